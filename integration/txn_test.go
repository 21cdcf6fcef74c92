package integration

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

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
