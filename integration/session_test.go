package integration

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// sessionVars is what a session reads back of its state.
const sessionVarsQuery = "SELECT @@character_set_client, @@character_set_results, @@collation_connection, " +
	"@@sql_mode, @@time_zone, @@tx_isolation, @@transaction_isolation, CHAR_LENGTH('é'), " +
	"TIME_FORMAT(TIMEDIFF(NOW(), UTC_TIMESTAMP()), '%H:%i')"

// testSessionState runs sessions with different session variables concurrently over a pool
// of two backend connections: each must see its own state on every statement, whichever
// backend connection serves it.
func testSessionState(t *testing.T, e *env) {
	m := dbMap{Logical: "sess", Physical: "sess_phys"}
	cfg := e.config(t, m)
	e.backendUser(t, cfg, "px_session")
	cfg.Backends[0].Pool = poolConfig{MaxOpen: 2, MaxIdle: 2}
	p := startProxy(t, cfg)
	mustExec(t, e.direct(t, m.Physical), "CREATE TABLE st (id INT PRIMARY KEY, v VARCHAR(50))", "INSERT INTO st VALUES (1, 'one'), (2, 'two')")

	db := p.open(t, appUser, appPass, m.Logical)
	defaults := query(t, db, sessionVarsQuery).Rows[0]
	if text(defaults[7]) != "1" {
		t.Fatalf("default session: CHAR_LENGTH('é') = %s, want 1", text(defaults[7]))
	}
	type session struct {
		name  string
		setup []string
		want  []string // nil entries: the default
	}
	sessions := []session{
		{"Latin1AnsiPlus5ReadCommitted", []string{
			"SET NAMES latin1", "SET sql_mode = 'ANSI_QUOTES'", "SET time_zone = '+05:00'",
			"SET SESSION transaction_isolation = 'READ-COMMITTED'",
		}, []string{"latin1", "latin1", "latin1_swedish_ci", "ANSI_QUOTES", "+05:00", "READ-COMMITTED", "READ-COMMITTED", "2", "05:00"}},
		{"Utf8BinMinus0330Serializable", []string{
			"SET NAMES utf8 COLLATE utf8_bin", "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES,STRICT_ALL_TABLES'",
			"SET @@session.time_zone = '-03:30'", "SET SESSION tx_isolation = 'SERIALIZABLE'",
		}, []string{"utf8mb3", "utf8mb3", "utf8mb3_bin", "NO_BACKSLASH_ESCAPES,STRICT_ALL_TABLES", "-03:30", "SERIALIZABLE", "SERIALIZABLE", "1", "-03:30"}},
		{"DefaultsA", nil, make([]string, 9)},
		{"DefaultsB", nil, make([]string, 9)},
	}
	for _, s := range sessions {
		for i, w := range s.want {
			if w == "" {
				s.want[i] = text(defaults[i])
			}
		}
	}

	run := func(s session, mode []string, iterations int) error {
		sdb := p.open(t, appUser, appPass, m.Logical, mode...)
		conn, err := sdb.Conn(context.Background())
		if err != nil {
			return err
		}
		defer conn.Close()
		for _, q := range s.setup {
			if _, err := conn.ExecContext(context.Background(), q); err != nil {
				return fmt.Errorf("%s: %q: %w", s.name, q, err)
			}
		}
		for i := range iterations {
			var r result
			var err error
			switch i % 3 {
			case 0:
				r, err = tryQuery(conn, sessionVarsQuery)
			case 1: // with arguments: a prepared statement unless interpolated
				r, err = tryQuery(conn, strings.Replace(sessionVarsQuery, "'é'", "?", 1)+", ? AS i", "é", i)
			case 2: // other work in between
				if _, err = conn.ExecContext(context.Background(), "UPDATE st SET v = ? WHERE id = 2", s.name); err != nil {
					break
				}
				r, err = tryQuery(conn, sessionVarsQuery)
			}
			if err != nil {
				return fmt.Errorf("%s iteration %d: %w", s.name, i, err)
			}
			for j, w := range s.want {
				if g := text(r.Rows[0][j]); g != w {
					return fmt.Errorf("%s iteration %d: %s = %q, want %q", s.name, i, r.Columns[j], g, w)
				}
			}
		}
		return nil
	}

	for _, mode := range driverModes {
		t.Run(mode.name, func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, len(sessions)*2)
			for round := range 2 {
				for _, s := range sessions {
					wg.Go(func() {
						if err := run(s, mode.params, 30+round); err != nil {
							errs <- err
						}
					})
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			var n int
			if err := e.root.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'px_session'").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 2 {
				t.Errorf("%d backend connections, the pool allows 2", n)
			}
		})
	}

	t.Run("ColumnNamesOfRewrittenVariables", func(t *testing.T) {
		r := query(t, db, "SELECT @@transaction_isolation, @@session.transaction_isolation AS iso, @@tx_isolation")
		want := []string{"@@transaction_isolation", "iso", "@@tx_isolation"}
		if strings.Join(r.Columns, "|") != strings.Join(want, "|") {
			t.Errorf("columns %q, want %q", r.Columns, want)
		}
	})

	t.Run("InvalidValueKeepsState", func(t *testing.T) {
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		mustExec(t, conn, "SET time_zone = '+01:00'")
		_, err = conn.ExecContext(context.Background(), "SET time_zone = 'Nowhere/Nothing'")
		wantError(t, err, 1298, "HY000")
		_, err = conn.ExecContext(context.Background(), "SET SESSION no_such_variable = 1")
		wantError(t, err, 1193, "HY000")
		if v := queryString(t, conn, "SELECT @@time_zone"); v != "+01:00" {
			t.Errorf("time_zone after failed SETs = %s, want +01:00", v)
		}
	})

	t.Run("StickyState", func(t *testing.T) {
		// State the proxy cannot replay keeps the session on its backend connection: user
		// variables, temporary tables, named locks, SQL_CALC_FOUND_ROWS, SQL-level PREPARE.
		// Other sessions meanwhile use the remaining connection of the pool.
		a, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		o, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		others := func() {
			t.Helper()
			for range 3 {
				mustExec(t, o, "SET @x = 'other'", "SELECT SQL_CALC_FOUND_ROWS * FROM st LIMIT 0", "SELECT 1")
			}
		}
		mustExec(t, a, "SET @x = 'mine'", "SELECT @y := 41")
		others()
		if v := queryString(t, a, "SELECT CONCAT(@x, @y + 1)"); v != "mine42" {
			t.Errorf("user variables: %s, want mine42", v)
		}
		mustExec(t, a, "CREATE TEMPORARY TABLE tmp_sticky (a INT)", "INSERT INTO tmp_sticky VALUES (1), (2)")
		others()
		if v := queryString(t, a, "SELECT SUM(a) FROM tmp_sticky"); v != "3" {
			t.Errorf("temporary table: SUM = %s", v)
		}
		if v := queryString(t, a, "SELECT GET_LOCK('sticky_lock', 0)"); v != "1" {
			t.Fatalf("GET_LOCK = %s", v)
		}
		if v := queryString(t, o, "SELECT IS_FREE_LOCK('sticky_lock')"); v != "0" {
			t.Errorf("another session sees the lock free")
		}
		others()
		if v := queryString(t, a, "SELECT RELEASE_LOCK('sticky_lock')"); v != "1" {
			t.Errorf("RELEASE_LOCK by the holder = %s, want 1", v)
		}
		mustExec(t, a, "SELECT SQL_CALC_FOUND_ROWS id FROM st ORDER BY id LIMIT 1")
		others()
		if v := queryString(t, a, "SELECT FOUND_ROWS()"); v != "2" {
			t.Errorf("FOUND_ROWS() = %s, want 2", v)
		}
		mustExec(t, a, "PREPARE sq FROM 'SELECT ? * 2'", "SET @n = 21")
		others()
		if v := queryString(t, a, "EXECUTE sq USING @n"); v != "42" {
			t.Errorf("EXECUTE sq = %s, want 42", v)
		}
		mustExec(t, a, "DEALLOCATE PREPARE sq")
		// Closing the sticky sessions gives their backend connections back, reset.
		_ = a.Close()
		_ = o.Close()
		for range 5 {
			if v := queryString(t, db, "SELECT COALESCE(@x, 'unset')"); v == "mine" {
				t.Errorf("a new session sees the closed session's @x")
			}
		}
	})

	t.Run("CollationReplayAfterCharsetChange", func(t *testing.T) {
		knownBug(t, "router/vars.go prepareConn builds the replayed SET from two separately sorted lists: the "+
			"session's own variables first, then resets to the baseline of variables the backend connection has "+
			"but the session does not. A session that ran SET NAMES utf8mb4 COLLATE utf8mb4_bin keeps only "+
			"collation_connection (its character sets equal the baseline); on a backend connection last used by a "+
			"SET NAMES latin1 session the proxy sends \"SET SESSION collation_connection = 'utf8mb4_bin', "+
			"character_set_client = 'utf8mb4', character_set_connection = 'utf8mb4', ...\", and setting "+
			"character_set_connection last resets collation_connection to utf8mb4_general_ci: the session "+
			"silently compares strings case-insensitively ('a' = 'A' is 1)")
		one := e.config(t, dbMap{Logical: "sess", Physical: "sess_phys"})
		one.Backends[0].Pool = poolConfig{MaxOpen: 1, MaxIdle: 1}
		p1 := startProxy(t, one)
		db1 := p1.open(t, appUser, appPass, m.Logical)
		latin, err := db1.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer latin.Close()
		bin, err := db1.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer bin.Close()
		mustExec(t, latin, "SET NAMES latin1")
		mustExec(t, bin, "SET NAMES utf8mb4 COLLATE utf8mb4_bin")
		for i := range 3 {
			if v := queryString(t, latin, "SELECT @@collation_connection"); v != "latin1_swedish_ci" {
				t.Errorf("round %d: latin1 session: collation_connection %s", i, v)
			}
			r := query(t, bin, "SELECT @@collation_connection, 'a' = 'A'")
			if got := text(r.Rows[0][0]) + " " + text(r.Rows[0][1]); got != "utf8mb4_bin 0" {
				t.Errorf("round %d: utf8mb4_bin session: collation_connection and 'a' = 'A' are %s, want utf8mb4_bin 0", i, got)
			}
		}
	})

	t.Run("SQLModeSyntax", func(t *testing.T) {
		// The proxy parses every statement; the session's sql_mode changes what the text
		// means. Each statement must mean through the proxy what it means on MariaDB with
		// the same sql_mode. sess.st names the table qualified, which makes the proxy
		// rewrite and restore the statement.
		const bug = "the proxy parses (and, when it rewrites a statement, restores) SQL with the TiDB " +
			"parser's default SQL mode whatever the session's sql_mode: with ANSI_QUOTES, double-quoted " +
			"identifiers are syntax errors (1064) or, once restored, string literals; with PIPES_AS_CONCAT, || " +
			"is restored as OR; with NO_BACKSLASH_ESCAPES a backslash in a literal is taken as an escape"
		for _, tc := range []struct {
			name, mode, sql string
			bug             bool
		}{
			{"AnsiQuotesColumns", "ANSI_QUOTES", `SELECT "id", "v" FROM st WHERE "id" = 1`, false},
			{"AnsiQuotesQualifiedColumns", "ANSI_QUOTES", `SELECT "st"."v" FROM "st" WHERE "st"."id" = 1`, false},
			{"AnsiQuotesQualifiedTable", "ANSI_QUOTES", `SELECT "v" FROM "sess"."st" WHERE "id" = 1`, true},
			{"AnsiQuotesRewritten", "ANSI_QUOTES", `SELECT "v" FROM sess.st WHERE id = 1`, true},
			{"PipesAsConcat", "PIPES_AS_CONCAT", `SELECT 'a' || 'b' FROM st WHERE id = 1`, false},
			{"PipesAsConcatRewritten", "PIPES_AS_CONCAT", `SELECT 'a' || 'b' AS c FROM sess.st WHERE id = 1`, true},
			{"NoBackslashEscapes", "NO_BACKSLASH_ESCAPES", `SELECT 'C:\temp\' AS path`, false},
			{"NoBackslashEscapesRewritten", "NO_BACKSLASH_ESCAPES", `SELECT 'C:\xfiles\%' AS path FROM sess.st WHERE id = 1`, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.bug {
					knownBug(t, bug)
				}
				conn, err := db.Conn(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				mustExec(t, conn, "SET sql_mode = '"+tc.mode+"'")
				direct := e.direct(t, m.Physical, "sql_mode=%27"+tc.mode+"%27")
				dq := strings.NewReplacer(`"sess".`, `"sess_phys".`, "sess.", "sess_phys.").Replace(tc.sql)
				want, err := tryQuery(direct, dq)
				if err != nil {
					t.Fatalf("directly: %q: %v", dq, err)
				}
				got, err := tryQuery(conn, tc.sql)
				if err != nil {
					t.Fatalf("%q with sql_mode %s: %v (MariaDB answers %q)", tc.sql, tc.mode, err, want.Rows)
				}
				sameResult(t, tc.sql, got, want)
			})
		}
	})
}

// testTransactions checks that transactions keep one backend connection, commit and roll
// back as on MariaDB, and die with their client.
func testTransactions(t *testing.T, e *env) {
	m := dbMap{Logical: "txn", Physical: "txn_phys"}
	cfg := e.config(t, m)
	e.backendUser(t, cfg, "px_txn")
	cfg.Backends[0].Pool = poolConfig{MaxOpen: 3, MaxIdle: 3}
	p := startProxy(t, cfg)
	direct := e.direct(t, m.Physical)
	mustExec(t, direct, "CREATE TABLE tx (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB")
	db := p.open(t, appUser, appPass, m.Logical)
	count := func(cond string) string {
		t.Helper()
		return queryString(t, direct, "SELECT COUNT(*) FROM tx WHERE "+cond)
	}
	// Other sessions keep the remaining backend connections busy meanwhile.
	noise := func(stop <-chan struct{}) func() {
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, _ = db.Exec("SELECT COUNT(*) FROM tx")
				}
			})
		}
		return wg.Wait
	}

	t.Run("RollbackLeavesNothing", func(t *testing.T) {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, tx, "INSERT INTO tx VALUES (1, 'rolled back')", "UPDATE tx SET v = 'x' WHERE id = 1")
		if n := count("id = 1"); n != "0" {
			t.Errorf("uncommitted row visible on MariaDB: %s", n)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if n := count("id = 1"); n != "0" {
			t.Errorf("row present after ROLLBACK: %s", n)
		}
	})

	t.Run("CommitPersists", func(t *testing.T) {
		stop := make(chan struct{})
		wait := noise(stop)
		defer wait()
		defer close(stop)
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		var first string
		for i := range 20 {
			if _, err := tx.Exec("INSERT INTO tx VALUES (?, 'committed')", 100+i); err != nil {
				t.Fatal(err)
			}
			// @@pseudo_thread_id is the backend connection's id (the proxy answers
			// CONNECTION_ID() itself): the transaction must stay on one.
			id := queryString(t, tx, "SELECT @@pseudo_thread_id")
			if first == "" {
				first = id
			} else if id != first {
				t.Fatalf("statement %d of the transaction ran on backend connection %s, the first on %s", i, id, first)
			}
		}
		if n := count("id BETWEEN 100 AND 119"); n != "0" {
			t.Errorf("uncommitted rows visible on MariaDB: %s", n)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if n := count("id BETWEEN 100 AND 119"); n != "20" {
			t.Errorf("%s rows after COMMIT, want 20", n)
		}
	})

	t.Run("TextStatements", func(t *testing.T) {
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		mustExec(t, conn, "BEGIN", "INSERT INTO tx VALUES (200, 'begin/commit')", "COMMIT",
			"START TRANSACTION", "INSERT INTO tx VALUES (201, 'begin/rollback')", "ROLLBACK",
			"START TRANSACTION READ ONLY")
		_, err = conn.ExecContext(context.Background(), "INSERT INTO tx VALUES (202, 'read only')")
		wantError(t, err, 1792, "25006")
		mustExec(t, conn, "COMMIT")
		if got := queryString(t, direct, "SELECT GROUP_CONCAT(id) FROM tx WHERE id BETWEEN 200 AND 202"); got != "200" {
			t.Errorf("rows %s, want 200", got)
		}
	})

	t.Run("BeginTxOptions", func(t *testing.T) {
		tx, err := db.BeginTx(context.Background(), &sql.TxOptions{Isolation: sql.LevelReadCommitted})
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, tx, "INSERT INTO tx VALUES (300, 'read committed')")
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		tx, err = db.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec("INSERT INTO tx VALUES (301, 'read only')")
		wantError(t, err, 1792, "25006")
		_ = tx.Rollback()
		if got := count("id IN (300, 301)"); got != "1" {
			t.Errorf("%s rows, want 1", got)
		}
		// The one-shot isolation level did not leak into other sessions.
		if v := queryString(t, db, "SELECT @@tx_isolation"); v != "REPEATABLE-READ" {
			t.Errorf("@@tx_isolation after the transaction = %s", v)
		}
	})

	t.Run("AutocommitOff", func(t *testing.T) {
		stop := make(chan struct{})
		wait := noise(stop)
		defer wait()
		defer close(stop)
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		mustExec(t, conn, "SET autocommit = 0", "INSERT INTO tx VALUES (400, 'ac0 commit')")
		if n := count("id = 400"); n != "0" {
			t.Errorf("row visible before COMMIT with autocommit=0")
		}
		mustExec(t, conn, "COMMIT", "INSERT INTO tx VALUES (401, 'ac0 rollback')")
		if n := count("id = 400"); n != "1" {
			t.Errorf("row not visible after COMMIT")
		}
		mustExec(t, conn, "ROLLBACK")
		if n := count("id = 401"); n != "0" {
			t.Errorf("row visible after ROLLBACK")
		}
		if v := queryString(t, conn, "SELECT @@autocommit"); v != "0" {
			t.Errorf("@@autocommit = %s, want 0", v)
		}
		mustExec(t, conn, "SET autocommit = 1", "INSERT INTO tx VALUES (402, 'ac1')")
		if n := count("id = 402"); n != "1" {
			t.Errorf("row not visible with autocommit back on")
		}
		if v := queryString(t, db, "SELECT @@autocommit"); v != "1" {
			t.Errorf("another session sees @@autocommit = %s", v)
		}
	})

	t.Run("Savepoints", func(t *testing.T) {
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		mustExec(t, conn, "BEGIN", "INSERT INTO tx VALUES (500, 'a')", "SAVEPOINT a",
			"INSERT INTO tx VALUES (501, 'b')", "SAVEPOINT b", "INSERT INTO tx VALUES (502, 'c')",
			"ROLLBACK TO SAVEPOINT b", "RELEASE SAVEPOINT b", "SAVEPOINT c", "INSERT INTO tx VALUES (503, 'd')",
			"ROLLBACK TO c", "ROLLBACK TO SAVEPOINT a", "INSERT INTO tx VALUES (504, 'e')", "COMMIT")
		if got := queryString(t, direct, "SELECT GROUP_CONCAT(id ORDER BY id) FROM tx WHERE id BETWEEN 500 AND 599"); got != "500,504" {
			t.Errorf("rows %s, want 500,504", got)
		}
		_, err = conn.ExecContext(context.Background(), "ROLLBACK TO SAVEPOINT a")
		wantError(t, err, 1305, "42000")
	})

	t.Run("UseInsideTransaction", func(t *testing.T) {
		// A session without a current database pins a pooled connection whose default
		// database is whatever its previous user left (the pool is per backend, shared by
		// the shards on it); after USE, unqualified statements must run in the new database.
		x, y := dbMap{Logical: "txa", Physical: "txa_phys"}, dbMap{Logical: "txb", Physical: "txb_phys"}
		cfg2 := e.config(t, x, y) // creates the physical databases
		cfg2.Backends[0].Pool = poolConfig{MaxOpen: 1, MaxIdle: 1}
		for _, d := range []dbMap{x, y} {
			mustExec(t, e.direct(t, d.Physical), "CREATE TABLE u (id INT PRIMARY KEY, v VARCHAR(20))")
		}
		p2 := startProxy(t, cfg2)
		// The only backend connection was last used in txb_phys.
		mustExec(t, p2.open(t, nativeAll, nativePw2, y.Logical), "INSERT INTO u VALUES (100, 'in txb')")
		conn, err := p2.open(t, nativeAll, nativePw2, "").Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		mustExec(t, conn, "BEGIN", "USE txa", "INSERT INTO u VALUES (1, 'for txa')", "COMMIT")
		if v := queryString(t, conn, "SELECT DATABASE()"); v != "txa" {
			t.Errorf("DATABASE() = %s, want txa", v)
		}
		for _, c := range []struct{ db, want string }{{x.Physical, "1"}, {y.Physical, "100"}} {
			if got := queryString(t, e.direct(t, c.db), "SELECT COALESCE(GROUP_CONCAT(id ORDER BY id), '') FROM u"); got != c.want {
				t.Errorf("%s.u holds ids %q, want %q", c.db, got, c.want)
			}
		}
		// The same with a connection pinned by a user variable.
		mustExec(t, p2.open(t, nativeAll, nativePw2, y.Logical), "SELECT COUNT(*) FROM u")
		pinned, err := p2.open(t, nativeAll, nativePw2, "").Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer pinned.Close()
		mustExec(t, pinned, "SET @pin = 1", "USE txa")
		if got := queryString(t, pinned, "SELECT GROUP_CONCAT(id) FROM u"); got != "1" {
			t.Errorf("after SET @pin and USE txa, u holds ids %s, want txa's 1", got)
		}
	})

	t.Run("ClientDisconnectsMidTransaction", func(t *testing.T) {
		mustExec(t, direct, "INSERT INTO tx VALUES (600, 'clean'), (601, 'clean'), (602, 'clean')")
		for i, how := range []string{"reset", "close", "quit"} {
			id := 600 + i
			c := connectRaw(t, p.Addr, appUser, appPass, m.Logical)
			for _, q := range []string{"BEGIN", fmt.Sprintf("UPDATE tx SET v = 'dirty' WHERE id = %d", id), fmt.Sprintf("INSERT INTO tx VALUES (%d, 'orphan')", id+50)} {
				if _, err := c.query(q); err != nil {
					t.Fatalf("%q: %v", q, err)
				}
			}
			switch how {
			case "reset":
				_ = c.nc.(*net.TCPConn).SetLinger(0)
			case "quit":
				_ = c.command(comQuit, nil)
			}
			_ = c.nc.Close()

			// The row lock must be released promptly, not after innodb_lock_wait_timeout.
			conn, err := db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			mustExec(t, conn, "SET SESSION innodb_lock_wait_timeout = 20")
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err = conn.ExecContext(ctx, "UPDATE tx SET v = ? WHERE id = ?", "updated", id)
			cancel()
			_ = conn.Close()
			if err != nil {
				t.Fatalf("%s: updating the row the vanished client had locked: %v", how, err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("%s: the lock was held %v after the client disconnected", how, d)
			}
			if got := queryString(t, direct, fmt.Sprintf("SELECT CONCAT(v, '/', (SELECT COUNT(*) FROM tx WHERE id = %d)) FROM tx WHERE id = %d", id+50, id)); got != "updated/0" {
				t.Errorf("%s: row and orphan count %s, want updated/0 (nothing of the transaction committed)", how, got)
			}
		}
	})

	t.Run("SessionClosedWithOpenTransactionFreesConnection", func(t *testing.T) {
		// More abandoned transactions than the pool has connections.
		for i := range 5 {
			c := connectRaw(t, p.Addr, appUser, appPass, m.Logical)
			if _, err := c.query(fmt.Sprintf("INSERT INTO tx VALUES (%d, 'x')", 700+i)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.query("BEGIN"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.query(fmt.Sprintf("DELETE FROM tx WHERE id = %d", 700+i)); err != nil {
				t.Fatal(err)
			}
			_ = c.nc.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM tx WHERE id BETWEEN 700 AND 704").Scan(&n); err != nil {
			t.Fatalf("a new statement after abandoned transactions: %v", err)
		}
		if n != 5 {
			t.Errorf("%d of the 5 rows left, want 5 (the DELETEs were never committed)", n)
		}
	})
}

// testProxyFunctions checks what the proxy answers itself: LAST_INSERT_ID(),
// CONNECTION_ID(), DATABASE(), SHOW DATABASES.
func testProxyFunctions(t *testing.T, e *env) {
	m, other := dbMap{Logical: "fn", Physical: "fn_phys"}, dbMap{Logical: "fn2", Physical: "fn2_phys"}
	cfg := e.config(t, m, other)
	cfg.Backends[0].Pool = poolConfig{MaxOpen: 2, MaxIdle: 2}
	p := startProxy(t, cfg)
	mustExec(t, e.direct(t, m.Physical),
		"CREATE TABLE parent (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))",
		"CREATE TABLE child (id BIGINT AUTO_INCREMENT PRIMARY KEY, parent_id BIGINT)",
		"CREATE TABLE seq (id BIGINT NOT NULL)", "INSERT INTO seq VALUES (1000)",
		"CREATE TABLE noauto (id INT PRIMARY KEY)")

	for _, mode := range driverModes {
		t.Run("LastInsertID"+mode.name, func(t *testing.T) {
			db := p.open(t, appUser, appPass, m.Logical, mode.params...)
			a, err := db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			c, err := db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if v := queryString(t, c, "SELECT LAST_INSERT_ID()"); v != "0" {
				t.Errorf("LAST_INSERT_ID() of a session that inserted nothing = %s", v)
			}
			for i := range 10 {
				res, err := a.ExecContext(context.Background(), "INSERT INTO parent (v) VALUES (?)", "a")
				if err != nil {
					t.Fatal(err)
				}
				aid, _ := res.LastInsertId()
				// Another session inserts in between, most likely on the same backend connection.
				if _, err := b.ExecContext(context.Background(), "INSERT INTO parent (v) VALUES ('b'), ('b'), ('b')"); err != nil {
					t.Fatal(err)
				}
				for _, q := range []string{"SELECT LAST_INSERT_ID()", "SELECT LAST_INSERT_ID() + 0 AS x"} {
					if v := queryString(t, a, q); v != fmt.Sprint(aid) {
						t.Fatalf("iteration %d: %s = %s, want %d", i, q, v, aid)
					}
				}
				if v := queryString(t, a, "SELECT LAST_INSERT_ID() FROM parent WHERE id = ?", aid); v != fmt.Sprint(aid) {
					t.Fatalf("iteration %d: prepared LAST_INSERT_ID() = %s, want %d", i, v, aid)
				}
				// The classic parent/child insert.
				mustExec(t, a, "INSERT INTO child (parent_id) VALUES (LAST_INSERT_ID())")
				if v := queryString(t, e.direct(t, m.Physical), "SELECT parent_id FROM child ORDER BY id DESC LIMIT 1"); v != fmt.Sprint(aid) {
					t.Fatalf("iteration %d: child.parent_id = %s, want %d", i, v, aid)
				}
			}
			// A statement prepared once answers the id of the latest insert at each execution.
			st, err := a.PrepareContext(context.Background(), "SELECT LAST_INSERT_ID() + ?")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for range 3 {
				res, err := a.ExecContext(context.Background(), "INSERT INTO parent (v) VALUES ('again')")
				if err != nil {
					t.Fatal(err)
				}
				id, _ := res.LastInsertId()
				var v int64
				if err := st.QueryRowContext(context.Background(), 0).Scan(&v); err != nil {
					t.Fatal(err)
				}
				if v != id {
					t.Errorf("prepared-once LAST_INSERT_ID() = %d, want %d", v, id)
				}
			}
			// A multi-row INSERT answers its first id; a statement generating none keeps it.
			res, err := b.ExecContext(context.Background(), "INSERT INTO parent (v) VALUES ('m1'), ('m2'), ('m3')")
			if err != nil {
				t.Fatal(err)
			}
			first, _ := res.LastInsertId()
			mustExec(t, b, fmt.Sprintf("INSERT INTO noauto VALUES (%d)", first), "UPDATE parent SET v = 'u' WHERE id = 1")
			if v := queryString(t, b, "SELECT LAST_INSERT_ID()"); v != fmt.Sprint(first) {
				t.Errorf("after a multi-row INSERT and statements generating no id: LAST_INSERT_ID() = %s, want %d", v, first)
			}
			// LAST_INSERT_ID(expr) sets it: the sequence-table idiom.
			mustExec(t, b, "UPDATE seq SET id = LAST_INSERT_ID(id + 1)")
			mustExec(t, a, "INSERT INTO parent (v) VALUES ('other session')")
			want := queryString(t, e.direct(t, m.Physical), "SELECT id FROM seq")
			if v := queryString(t, b, "SELECT LAST_INSERT_ID()"); v != want {
				t.Errorf("after UPDATE seq SET id = LAST_INSERT_ID(id + 1): LAST_INSERT_ID() = %s, want %s", v, want)
			}
		})
	}

	t.Run("IdentityVariables", func(t *testing.T) {
		// @@identity and @@last_insert_id are MySQL's synonyms of LAST_INSERT_ID().
		// One backend connection: the other session's INSERT surely runs on it too.
		one := e.config(t, m, other)
		one.Backends[0].Pool = poolConfig{MaxOpen: 1, MaxIdle: 1}
		db := startProxy(t, one).open(t, appUser, appPass, m.Logical)
		a, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		res, err := a.ExecContext(context.Background(), "INSERT INTO parent (v) VALUES ('identity')")
		if err != nil {
			t.Fatal(err)
		}
		aid, _ := res.LastInsertId()
		mustExec(t, b, "INSERT INTO parent (v) VALUES ('x'), ('y')")
		for _, q := range []string{"SELECT @@identity", "SELECT @@last_insert_id", "SELECT @@session.last_insert_id"} {
			if v := queryString(t, a, q); v != fmt.Sprint(aid) {
				t.Errorf("%s = %s, want %d (the session's last id)", q, v, aid)
			}
		}
	})

	t.Run("ConnectionID", func(t *testing.T) {
		ids := map[string]bool{}
		for range 3 {
			c := connectRaw(t, p.Addr, appUser, appPass, m.Logical)
			for range 5 {
				if v := c.queryValue(t, "SELECT CONNECTION_ID()"); deref(v) != fmt.Sprint(c.ConnID) {
					t.Errorf("CONNECTION_ID() = %s, the handshake said %d", deref(v), c.ConnID)
				}
			}
			ids[fmt.Sprint(c.ConnID)] = true
		}
		if len(ids) != 3 {
			t.Errorf("three connections got ids %v", ids)
		}
		db := p.open(t, appUser, appPass, m.Logical)
		a, _ := db.Conn(context.Background())
		defer a.Close()
		b, _ := db.Conn(context.Background())
		defer b.Close()
		ida, idb := queryString(t, a, "SELECT CONNECTION_ID()"), queryString(t, b, "SELECT CONNECTION_ID()")
		if ida == idb {
			t.Errorf("two sessions share CONNECTION_ID() %s", ida)
		}
		for range 5 {
			if v := queryString(t, a, "SELECT CONNECTION_ID() + ?", 0); v != ida {
				t.Errorf("prepared CONNECTION_ID() = %s, want %s", v, ida)
			}
			if v := queryString(t, b, "SELECT CONNECTION_ID()"); v != idb {
				t.Errorf("CONNECTION_ID() changed to %s, want %s", v, idb)
			}
		}
	})

	t.Run("Database", func(t *testing.T) {
		db := p.open(t, sha2User, sha2Pass, "")
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, step := range []struct{ use, want string }{{"", "NULL"}, {"fn", "fn"}, {"fn2", "fn2"}} {
			if step.use != "" {
				mustExec(t, conn, "USE "+step.use)
			}
			for _, q := range []string{"SELECT DATABASE()", "SELECT SCHEMA()", "SELECT DATABASE() FROM DUAL WHERE 1 = ?"} {
				var args []any
				if strings.Contains(q, "?") {
					args = []any{1}
				}
				if v := queryString(t, conn, q, args...); v != step.want {
					t.Errorf("after USE %q: %s = %s, want %s", step.use, q, v, step.want)
				}
			}
		}
		// A statement prepared once answers the database of each execution.
		st, err := conn.PrepareContext(context.Background(), "SELECT CONCAT(DATABASE(), ?)")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		for _, db := range []string{"fn", "fn2", "fn"} {
			mustExec(t, conn, "USE "+db)
			var v string
			if err := st.QueryRowContext(context.Background(), "!").Scan(&v); err != nil {
				t.Fatal(err)
			}
			if v != db+"!" {
				t.Errorf("a statement prepared earlier, executed in %s: %s", db, v)
			}
		}
		if v := queryString(t, p.open(t, appUser, appPass, "fn", "interpolateParams=true"), "SELECT DATABASE()"); v != "fn" {
			t.Errorf("DATABASE() of a session opened on fn = %s", v)
		}
	})

	t.Run("ShowDatabases", func(t *testing.T) {
		for _, tc := range []struct {
			user, pass, sql string
			want            string
		}{
			{appUser, appPass, "SHOW DATABASES", "information_schema,fn"},
			{otherUser, otherPass, "SHOW DATABASES", "information_schema,fn2"},
			{sha2User, sha2Pass, "SHOW DATABASES", "information_schema,fn,fn2"},
			{sha2User, sha2Pass, "SHOW DATABASES LIKE 'fn%'", "fn,fn2"},
			{sha2User, sha2Pass, "SHOW DATABASES LIKE 'FN_'", "fn2"},
			{sha2User, sha2Pass, "SHOW SCHEMAS LIKE 'nothing'", ""},
		} {
			r := query(t, p.open(t, tc.user, tc.pass, ""), tc.sql)
			var names []string
			for _, row := range r.Rows {
				names = append(names, text(row[0]))
			}
			if got := strings.Join(names, ","); got != tc.want {
				t.Errorf("%s as %s: %q, want %q", tc.sql, tc.user, got, tc.want)
			}
		}
	})
}
