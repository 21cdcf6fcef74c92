package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// txnUsers is how many users the sharded transaction tests seed (user_id 1..txnUsers).
const txnUsers = 240

// TestShardedTransactions checks transactions over four real MariaDB shards against one
// MariaDB holding all the rows: statement errors inside a transaction, savepoints taken
// before a shard joins, ORM nested transactions, and autocommit=0 clients that hold a
// backend connection only while a transaction is open.
func TestShardedTransactions(t *testing.T) {
	se := newShardedEnv(t, map[string]any{"name": "users", "kind": "sharded", "key": "user_id", "scheme": "by_user"})
	mustExec(t, se.shards[0], "CREATE DATABASE ref")
	ref := se.servers[0].DB(t, "ref")
	db := se.proxy.open(t, appUser, appPass, "shop")
	schema := []string{
		"CREATE TABLE users (user_id BIGINT PRIMARY KEY, score INT NOT NULL DEFAULT 0) ENGINE=InnoDB",
		"CREATE TABLE orders (order_id BIGINT NOT NULL, user_id BIGINT NOT NULL, total DECIMAL(10,2), PRIMARY KEY (user_id, order_id)) ENGINE=InnoDB",
	}
	mustExec(t, db, schema...)
	mustExec(t, ref, schema...)
	var vals []string
	for u := 1; u <= txnUsers; u++ {
		vals = append(vals, fmt.Sprintf("(%d, 0)", u))
	}
	for _, q := range []querier{db, ref} {
		mustExec(t, q, "INSERT INTO users (user_id, score) VALUES "+strings.Join(vals, ","),
			"INSERT INTO orders (order_id, user_id, total) VALUES (1, 1, 10), (2, 2, 20), (3, 3, 30), (4, 4, 40), (5, 5, 50)")
	}
	t.Run("SameAsOneMariaDB", func(t *testing.T) { testTxnDifferential(t, se, db, ref) })
	t.Run("DeadlockRollsBackEveryShard", func(t *testing.T) { testDeadlockEveryShard(t, se) })
	t.Run("ClientFoundRows", func(t *testing.T) { testClientFoundRows(t, se) })
	t.Run("SmallerMismatches", func(t *testing.T) { testSmallerMismatches(t, se, ref) })
	t.Run("GORMNestedTransactions", func(t *testing.T) { testGORMSavepoints(t, se) })
	t.Run("PyMySQLAutocommitOff", func(t *testing.T) { testPyMySQLAutocommit(t, se) })
	t.Run("GoDriverAutocommitOff", func(t *testing.T) { testGoAutocommit(t, se) })
}

// distinctShardUsers returns n user ids on n different shards, first the one of user 7.
func distinctShardUsers(t *testing.T, n int) []int64 {
	out := []int64{7}
	seen := map[int]bool{userShard(t, 7): true}
	for u := int64(1); len(out) < n && u <= txnUsers; u++ {
		if sh := userShard(t, u); !seen[sh] {
			seen[sh] = true
			out = append(out, u)
		}
	}
	return out
}

// testTxnDifferential runs scripted sessions on the proxy and on one MariaDB and compares
// every statement's outcome (error code and SQLSTATE, rows) and the data left behind.
func testTxnDifferential(t *testing.T, se *shardedEnv, db, ref *sql.DB) {
	u := distinctShardUsers(t, 3)
	a, b, c := u[0], u[1], u[2]
	upd := func(user int64, v int) string {
		return fmt.Sprintf("UPDATE users SET score = %d WHERE user_id = %d", v, user)
	}
	sel := func(user int64) string { return fmt.Sprintf("SELECT score FROM users WHERE user_id = %d", user) }
	const scatter = "SELECT user_id, total FROM orders ORDER BY user_id"
	scripts := []struct {
		name  string
		stmts []string
	}{
		{"ScatterErrorInTransaction", []string{"BEGIN", upd(a, 1), "SELECT nosuch FROM orders", sel(a), scatter, upd(a, 2), "COMMIT"}},
		{"ScatterErrorAfterScatterRead", []string{"BEGIN", scatter, "SELECT nosuch FROM orders", upd(a, 3), sel(a), "ROLLBACK"}},
		{"ScatterErrorMidStream", []string{"BEGIN", upd(b, 4), "SELECT user_id, (SELECT 1 UNION SELECT 2) FROM orders", sel(b), "COMMIT"}},
		{"ScatterErrorAutocommitOff", []string{"SET autocommit = 0", upd(a, 5), "SELECT nosuch FROM orders", sel(a), "ROLLBACK", upd(a, 6), "SELECT nosuch FROM users", "COMMIT", "SET autocommit = 1"}},
		{"SavepointBeforeShardJoins", []string{"BEGIN", "SAVEPOINT sp", upd(a, 12345), "ROLLBACK TO SAVEPOINT sp", sel(a), "COMMIT"}},
		{"SavepointNested", []string{"BEGIN", upd(a, 1), "SAVEPOINT s1", scatter, upd(a, 2), "SAVEPOINT s2", upd(a, 3),
			"ROLLBACK TO SAVEPOINT s2", sel(a), "RELEASE SAVEPOINT s1", "ROLLBACK TO SAVEPOINT s1", "ROLLBACK TO SAVEPOINT s2", sel(a), "COMMIT"}},
		{"SavepointRollbackFreesTheWriter", []string{"BEGIN", scatter, "SAVEPOINT s", upd(b, 7), "ROLLBACK TO s", upd(c, 8), sel(b), "COMMIT"}},
		{"SavepointRedefined", []string{"START TRANSACTION", "SAVEPOINT x", upd(a, 1), "SAVEPOINT y", upd(a, 2), "SAVEPOINT X", upd(a, 3),
			"ROLLBACK TO y", sel(a), "ROLLBACK TO x", "COMMIT"}},
		{"SavepointUnknown", []string{"ROLLBACK TO SAVEPOINT nosuch", "SAVEPOINT outside", "ROLLBACK TO outside", "RELEASE SAVEPOINT outside",
			"BEGIN", "RELEASE SAVEPOINT nosuch", upd(c, 9), "COMMIT", "ROLLBACK TO SAVEPOINT nosuch"}},
		{"SavepointAutocommitOff", []string{"SET autocommit = 0", "SAVEPOINT s", upd(a, 10), "ROLLBACK TO SAVEPOINT s", upd(b, 11), sel(a),
			"COMMIT", "SAVEPOINT t", upd(c, 12), "RELEASE SAVEPOINT t", "ROLLBACK", "SET autocommit = 1"}},
		{"ImplicitCommit", []string{"SET autocommit = 0", upd(a, 13), scatter, "SET autocommit = 1", "ROLLBACK", sel(a)}},
	}
	reset := "UPDATE users SET score = 0"
	for _, sc := range scripts {
		t.Run(sc.name, func(t *testing.T) {
			mustExec(t, db, reset)
			mustExec(t, ref, reset)
			// A session of its own on each side: what a script leaves behind stays there.
			pc := oneSession(t, se.proxy.dsn(appUser, appPass, "shop"))
			rc := oneSession(t, se.servers[0].DSN("ref"))
			for i, q := range sc.stmts {
				got, want := outcome(pc, q), outcome(rc, q)
				// Messages may differ (a shard names its physical database): compare codes.
				if g, w := strings.Split(got, "\x00"), strings.Split(want, "\x00"); g[0] != w[0] {
					t.Fatalf("statement %d %q: through the proxy %q, on one MariaDB %q", i, q, got, want)
				}
			}
			sameResult(t, "data after the session", query(t, db, "SELECT user_id, score FROM users WHERE score <> 0 ORDER BY user_id"),
				query(t, ref, "SELECT user_id, score FROM users WHERE score <> 0 ORDER BY user_id"))
		})
	}
}

// oneSession opens a connection of its own (database/sql never moves a *sql.Conn's
// statements to another connection), closed by t.Cleanup.
func oneSession(t *testing.T, dsn string) *sql.Conn {
	c, err := openDB(t, dsn).Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// outcome runs one statement and describes what it returned: rows, or the error's code and
// SQLSTATE, then a NUL and its message.
func outcome(q querier, stmt string) string {
	r, err := tryQuery(q, stmt)
	var me *mysql.MySQLError
	switch {
	case errors.As(err, &me):
		return fmt.Sprintf("ERROR %d (%s)", me.Number, me.SQLState[:]) + "\x00" + me.Message
	case err != nil:
		return "failure " + err.Error()
	}
	var rows []string
	for _, row := range r.Rows {
		var vals []string
		for _, v := range row {
			vals = append(vals, text(v))
		}
		rows = append(rows, strings.Join(vals, ","))
	}
	return fmt.Sprintf("ok %q", rows)
}

// testGORMSavepoints runs GORM's nested transactions (SAVEPOINT / ROLLBACK TO) over
// shards: a nested transaction that fails is undone on the shard it wrote, wherever the
// outer transaction began.
func testGORMSavepoints(t *testing.T, se *shardedEnv) {
	type user struct {
		UserID int64 `gorm:"primaryKey;autoIncrement:false"`
		Score  int
	}
	gdb, err := gorm.Open(gormmysql.Open(se.proxy.dsn(appUser, appPass, "shop")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	u := distinctShardUsers(t, 3)
	a, b, c := u[0], u[1], u[2]
	mustExec(t, se.proxy.open(t, appUser, appPass, "shop"), "UPDATE users SET score = 0")
	setScore := func(tx *gorm.DB, id int64, v int) error {
		return tx.Model(&user{}).Where("user_id = ?", id).Update("score", v).Error
	}
	errUndo := errors.New("undo the nested transaction")
	err = gdb.Transaction(func(tx *gorm.DB) error {
		// The nested transaction writes shard b, then fails: its savepoint predates b's join.
		if err := tx.Transaction(func(tx2 *gorm.DB) error {
			if err := setScore(tx2, b, 111); err != nil {
				return err
			}
			return errUndo
		}); !errors.Is(err, errUndo) {
			return fmt.Errorf("nested transaction: %w", err)
		}
		// Rolled back to before it: shard b no longer counts as written, a may be.
		if err := setScore(tx, a, 222); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&user{}).Count(&n).Error; err != nil { // a read on every shard
			return err
		}
		return tx.Transaction(func(tx2 *gorm.DB) error { return setScore(tx2, a, 223) })
	}, &sql.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// SavePoint / RollbackTo by hand.
	tx := gdb.Begin()
	if err := tx.SavePoint("sp_before").Error; err != nil {
		t.Fatal(err)
	}
	if err := setScore(tx, c, 333); err != nil {
		t.Fatal(err)
	}
	if err := tx.RollbackTo("sp_before").Error; err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit().Error; err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int64]string{a: "223", b: "0", c: "0"} {
		if got := queryString(t, se.shards[userShard(t, id)], "SELECT score FROM users WHERE user_id = ?", id); got != want {
			t.Errorf("user %d: score %s on its shard, want %s", id, got, want)
		}
	}
}

// testPyMySQLAutocommit connects many more PyMySQL clients (autocommit off, the DB-API
// default) than the pool holds backend connections, all at once, each running short
// transactions: a connection is held only while a transaction is open.
func testPyMySQLAutocommit(t *testing.T, se *shardedEnv) {
	py := requireTool(t, "/usr/bin/python3", "python3-pymysql")
	if out, err := exec.Command(py, "-c", "import pymysql").CombinedOutput(); err != nil {
		requireTool(t, "/usr/lib/python3/dist-packages/pymysql", "python3-pymysql")
		t.Fatalf("import pymysql: %v\n%s", err, out)
	}
	host, port, err := splitAddr(se.proxy.Addr)
	if err != nil {
		t.Fatal(err)
	}
	const clients, txns, first = 100, 5, 101 // the pools hold 10 connections per shard
	db := se.proxy.open(t, appUser, appPass, "shop")
	mustExec(t, db, "UPDATE users SET score = 0")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "testdata/pymysql_autocommit.py", host, port, appUser, appPass, "shop",
		strconv.Itoa(clients), strconv.Itoa(txns), strconv.Itoa(first)).CombinedOutput()
	if err != nil {
		t.Fatalf("PyMySQL clients: %v\n%s", err, out)
	}
	want := fmt.Sprint(clients * txns)
	if got := queryString(t, db, "SELECT SUM(score) FROM users"); got != want {
		t.Errorf("sum of scores %s after %d clients × %d transactions, want %s", got, clients, txns, want)
	}
}

func splitAddr(addr string) (string, string, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", fmt.Errorf("no port in %q", addr)
	}
	return addr[:i], addr[i+1:], nil
}

// testGoAutocommit does the same with go-sql-driver and autocommit=0 in the DSN.
func testGoAutocommit(t *testing.T, se *shardedEnv) {
	db := se.proxy.open(t, appUser, appPass, "shop", "autocommit=0")
	const clients, txns = 60, 5
	db.SetMaxOpenConns(clients)
	db.SetMaxIdleConns(clients)
	mustExec(t, se.proxy.open(t, appUser, appPass, "shop"), "UPDATE users SET score = 0")
	conns := make([]*sql.Conn, clients)
	for i := range conns { // every client holds its session from here on
		c, err := db.Conn(t.Context())
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		defer c.Close()
		conns[i] = c
	}
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for i, c := range conns {
		wg.Go(func() {
			ctx := t.Context()
			for range txns {
				if _, err := c.ExecContext(ctx, "UPDATE users SET score = score + 1 WHERE user_id = ?", i+1); err != nil {
					errs[i] = err
					return
				}
				if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
					errs[i] = err
					return
				}
			}
			// An uncommitted write is rolled back.
			if _, err := c.ExecContext(ctx, "UPDATE users SET score = score + 100 WHERE user_id = ?", i+1); err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = c.ExecContext(ctx, "ROLLBACK")
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("client %d: %v", i, err)
		}
	}
	if got, want := queryString(t, conns[0], "SELECT SUM(score) FROM users"), fmt.Sprint(clients*txns); got != want {
		t.Errorf("sum of scores %s after %d clients × %d transactions, want %s", got, clients, txns, want)
	}
}

// testClientFoundRows compares the affected rows go-sql-driver reports, with and without
// clientFoundRows=true, through the proxy and from one MariaDB.
func testClientFoundRows(t *testing.T, se *shardedEnv) {
	u := distinctShardUsers(t, 2)
	a, b := u[0], u[1]
	stmts := []string{
		fmt.Sprintf("UPDATE users SET score = 5 WHERE user_id = %d", a),
		fmt.Sprintf("UPDATE users SET score = 5 WHERE user_id = %d", a), // matched, unchanged
		"UPDATE users SET score = 5 WHERE user_id <= 20",                // every shard
		"UPDATE users SET score = 5 WHERE user_id <= 20",
		fmt.Sprintf("INSERT INTO orders (order_id, user_id, total) VALUES (900, %d, 1) ON DUPLICATE KEY UPDATE total = 1", a),
		fmt.Sprintf("INSERT INTO orders (order_id, user_id, total) VALUES (900, %d, 1) ON DUPLICATE KEY UPDATE total = 1", a),
		fmt.Sprintf("INSERT INTO orders (order_id, user_id, total) VALUES (900, %d, 2) ON DUPLICATE KEY UPDATE total = VALUES(total)", a),
		fmt.Sprintf("INSERT INTO orders (order_id, user_id, total) VALUES (900, %[1]d, 2), (901, %[1]d, 3), (902, %[1]d, 4) ON DUPLICATE KEY UPDATE total = VALUES(total)", a),
		fmt.Sprintf("INSERT INTO orders (order_id, user_id, total) VALUES (900, %[1]d, 2), (901, %[1]d, 5), (902, %[2]d, 4), (903, %[2]d, 4) ON DUPLICATE KEY UPDATE total = VALUES(total)", a, b),
		fmt.Sprintf("INSERT INTO orders (order_id, user_id, total) VALUES (900, %[1]d, 2), (902, %[2]d, 4) ON DUPLICATE KEY UPDATE total = VALUES(total)", a, b),
		fmt.Sprintf("INSERT IGNORE INTO orders (order_id, user_id, total) VALUES (900, %d, 7)", a),
		fmt.Sprintf("DELETE FROM orders WHERE order_id >= 900 AND user_id IN (%d, %d)", a, b),
	}
	for _, flag := range []string{"clientFoundRows=true", "clientFoundRows=false"} {
		for _, params := range []string{"interpolateParams=true", "interpolateParams=false"} {
			t.Run(flag+"/"+params, func(t *testing.T) {
				mustExec(t, se.proxy.open(t, appUser, appPass, "shop"), "UPDATE users SET score = 0")
				mustExec(t, se.servers[0].DB(t, "ref"), "UPDATE users SET score = 0")
				px := oneSession(t, se.proxy.dsn(appUser, appPass, "shop", flag, params))
				ref := oneSession(t, se.servers[0].DSN("ref")+"&"+flag+"&"+params)
				for _, q := range stmts {
					// A bound parameter sends prepared statements when interpolation is off.
					got, want := affected(t, px, q), affected(t, ref, q)
					if got != want {
						t.Errorf("%s: %d rows affected through the proxy, %d on one MariaDB", q, got, want)
					}
					if g, w := queryString(t, px, "SELECT ROW_COUNT()"), queryString(t, ref, "SELECT ROW_COUNT()"); g != w {
						t.Errorf("%s: ROW_COUNT() %s through the proxy, %s on one MariaDB", q, g, w)
					}
				}
			})
		}
	}
}

// affected runs q with one bound parameter (a no-op AND ? = 1) and returns RowsAffected.
func affected(t *testing.T, q querier, stmt string) int64 {
	t.Helper()
	if !strings.HasPrefix(stmt, "INSERT") {
		stmt += " AND ? = 1"
	} else {
		stmt = strings.Replace(stmt, "VALUES (", "VALUES (? * 0 + ", 1)
	}
	res, err := q.ExecContext(t.Context(), stmt, 1)
	if err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// testSmallerMismatches: comment-only queries, the proxy's own version and packet limit,
// LOAD DATA LOCAL INFILE.
func testSmallerMismatches(t *testing.T, se *shardedEnv, ref *sql.DB) {
	db := se.proxy.open(t, appUser, appPass, "shop")
	for _, q := range []string{"-- x", "/* x */", "# x", "/* x */ ;", "-- a\n-- b", " ", ";"} {
		got, want := outcome(db, q), outcome(ref, q)
		if g, w := strings.Split(got, "\x00"), strings.Split(want, "\x00"); g[0] != w[0] {
			t.Errorf("%q: through the proxy %q, on one MariaDB %q", q, got, want)
		}
	}
	raw := connectRaw(t, se.proxy.Addr, appUser, appPass, "shop")
	version := strings.TrimPrefix(raw.Version, "5.5.5-")
	for _, params := range []string{"interpolateParams=true", "interpolateParams=false"} {
		px := se.proxy.open(t, appUser, appPass, "shop", params)
		r := query(t, px, "SELECT @@version, VERSION(), @@global.version, @@max_allowed_packet, @@session.max_allowed_packet, ? AS p", 1)
		want := []string{version, version, version, "67108864", "67108864", "1"}
		for i, v := range r.Rows[0] {
			if text(v) != want[i] {
				t.Errorf("%s: %s = %q, want %q (the handshake says %q; the proxy's limit is 64 MiB)", params, r.Columns[i], text(v), want[i], raw.Version)
			}
		}
		if cols := strings.Join(r.Columns, ","); cols != "@@version,VERSION(),@@global.version,@@max_allowed_packet,@@session.max_allowed_packet,p" {
			t.Errorf("%s: columns %s", params, cols)
		}
	}
	// LOAD DATA LOCAL into a sharded table asks for the file now (loadsplit_test.go); the
	// driver refuses to send one it was not given, ends the transfer with an empty file,
	// and the proxy loads nothing and keeps the connection in step.
	_, err := db.Exec("LOAD DATA LOCAL INFILE '/nonexistent.csv' INTO TABLE users")
	if err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("LOAD DATA LOCAL of a file the client does not offer: %v, want the driver's refusal", err)
	}
	if n := queryString(t, db, "SELECT COUNT(*) FROM users"); n != fmt.Sprint(txnUsers) {
		t.Errorf("the connection after LOAD DATA LOCAL: %s users", n)
	}
}

// testDeadlockEveryShard: a deadlock on one shard rolls the victim's transaction back there;
// the proxy rolls it back on its other shards too, releasing the locks it held there.
func testDeadlockEveryShard(t *testing.T, se *shardedEnv) {
	y := distinctShardUsers(t, 2)[1] // on another shard than the users below
	x := userShard(t, 7)
	var onX []int64
	for u := int64(1); u <= txnUsers && len(onX) < 12; u++ {
		if userShard(t, u) == x {
			onX = append(onX, u)
		}
	}
	dsn := se.proxy.dsn(appUser, appPass, "shop")
	heavy, victim, other := oneSession(t, dsn), oneSession(t, dsn), oneSession(t, dsn)
	ctx := t.Context()
	exec := func(c *sql.Conn, q string, args ...any) error {
		_, err := c.ExecContext(ctx, q, args...)
		return err
	}
	// The victim locks a row on shard y, then one on shard x.
	mustExec(t, victim, "BEGIN")
	if _, err := tryQuery(victim, "SELECT score FROM users WHERE user_id = ? FOR UPDATE", y); err != nil {
		t.Fatal(err)
	}
	if err := exec(victim, "UPDATE users SET score = score + 1 WHERE user_id = ?", onX[0]); err != nil {
		t.Fatal(err)
	}
	// The other transaction changes many rows on shard x (InnoDB picks the lighter victim),
	// then waits for the victim's row.
	mustExec(t, heavy, "BEGIN")
	for _, u := range onX[1:] {
		if err := exec(heavy, "UPDATE users SET score = score + 1 WHERE user_id = ?", u); err != nil {
			t.Fatal(err)
		}
	}
	waited := make(chan error, 1)
	go func() { waited <- exec(heavy, "UPDATE users SET score = score + 1 WHERE user_id = ?", onX[0]) }()
	// INNODB_TRX is a copy InnoDB refreshes only when nobody read it for 0.1 s: polled more
	// often (eventually's 50 ms), it keeps showing the first snapshot, taken before the
	// heavy UPDATE reached its lock wait, for good. Poll it every 250 ms.
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := queryString(t, se.shards[x], "SELECT COUNT(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'")
		if n == "1" {
			break
		}
		select {
		case err := <-waited:
			t.Fatalf("the heavy transaction's UPDATE did not wait for the victim's lock: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			time.Sleep(250 * time.Millisecond) // a fresh copy for the report below
			// Every shard's InnoDB transactions, and what each backend session is doing
			// (a wait that is not InnoDB's, a command not yet read, a session gone).
			var all []string
			for i, sh := range se.shards {
				all = append(all, fmt.Sprintf("shard %d: trx [%s] sessions [%s]", i,
					queryString(t, sh, "SELECT IFNULL(GROUP_CONCAT(CONCAT(trx_mysql_thread_id, ' ', trx_state, ' ', IFNULL(trx_query, '-')) SEPARATOR '; '), '') FROM information_schema.innodb_trx"),
					queryString(t, sh, "SELECT IFNULL(GROUP_CONCAT(CONCAT(id, ' ', command, ' ', IFNULL(state, '-'), ' ', IFNULL(LEFT(info, 60), '-')) SEPARATOR '; '), '') FROM information_schema.processlist WHERE id <> CONNECTION_ID() AND command <> 'Daemon'")))
			}
			t.Fatalf("the heavy transaction waits for a lock: not true after 30s: %s transactions waiting on shard %d (%s)", n, x, strings.Join(all, " | "))
		}
		time.Sleep(250 * time.Millisecond)
	}
	err := exec(victim, "UPDATE users SET score = score + 1 WHERE user_id = ?", onX[1])
	wantError(t, err, 1213, "40001")
	if err := <-waited; err != nil {
		t.Fatalf("the heavy transaction: %v", err)
	}
	mustExec(t, heavy, "ROLLBACK")
	// The victim's lock on shard y is gone: another session writes that row at once.
	mustExec(t, other, "SET SESSION innodb_lock_wait_timeout = 2")
	if err := exec(other, "UPDATE users SET score = score WHERE user_id = ?", y); err != nil {
		t.Errorf("the row the deadlock victim locked on another shard: %v", err)
	}
	// The victim's session goes on outside a transaction.
	if err := exec(victim, "UPDATE users SET score = 0 WHERE user_id = ?", y); err != nil {
		t.Errorf("the victim's next statement: %v", err)
	}
}
