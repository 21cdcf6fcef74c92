package integration

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// rwsplitProxy starts a proxy in front of g's primary (b1) and first replica (b2): database
// fo reads from the replica under a 1 s lag bound; user ryw has a 1 h bound of its own.
func rwsplitProxy(t *testing.T, g *replGroup) *proxy {
	t.Helper()
	cfg := rwsplitConfig(t, g, 2)
	cfg.Shards = []shardConfig{{Name: "s0", Primary: "b1", Replicas: []string{"b2"}, Database: "fo"}}
	cfg.Databases = []databaseConfig{{Name: "fo", DefaultShard: "s0", ReadWriteSplit: true, MaxReplicaLag: "1s"}}
	return startProxy(t, cfg)
}

// rwsplitConfig is what the read/write split tests' proxies share: users app and ryw (read
// from replicas under a 1 h lag bound of its own), g's first n servers as backends b1..bn;
// the caller adds shards and databases.
func rwsplitConfig(t *testing.T, g *replGroup, n int) *proxyConfig {
	t.Helper()
	return &proxyConfig{
		Listen: "127.0.0.1:0",
		Server: map[string]any{"drain_timeout": "5s"},
		Users: []userConfig{
			{Name: appUser, PasswordHash: hashPassword(t, "mysql_native_password", appPass)},
			{Name: "ryw", PasswordHash: hashPassword(t, "mysql_native_password", appPass), ReadWriteSplit: true, MaxReplicaLag: "1h"},
		},
		Backends: g.backends(n, 20),
	}
}

// readRow reads row id of fo.t through q with the server that answered it (@@server_id is
// evaluated by the backend that ran the statement).
func readRow(t testing.TB, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, query string, id int64) (writer, server int) {
	t.Helper()
	if err := q.QueryRowContext(t.Context(), query, id).Scan(&writer, &server); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return writer, server
}

const readQ = "SELECT writer, @@server_id FROM t WHERE id = ?"

// TestReadWriteSplit: with read_write_split on, plain reads outside transactions are
// answered by the replica; FOR UPDATE, the /*+ PRIMARY */ hint, transactions and writes go
// to the primary; a replica whose SQL thread is stopped is skipped; and a session reads its
// own writes even from a replica that has not applied them yet.
func TestReadWriteSplit(t *testing.T) {
	g := startReplGroup(t, false)
	g.srv[0].Exec(t, "INSERT INTO fo.t (id, writer) VALUES (1, 10), (2, 20)")
	g.sync(t, g.srv[0], g.srv[1])
	p := rwsplitProxy(t, g)
	db := p.open(t, appUser, appPass, "fo", "interpolateParams=true")
	// Ready once the health checker measured the replica's lag: reads then reach it.
	waitFor(t, 15*time.Second, "reads to reach the replica", func() bool {
		var w, srv int
		err := db.QueryRowContext(t.Context(), readQ, 1).Scan(&w, &srv)
		return err == nil && srv == 2
	})

	t.Run("Routing", func(t *testing.T) {
		for i := range 20 {
			if w, srv := readRow(t, db, readQ, 1); srv != 2 || w != 10 {
				t.Fatalf("read %d: writer %d from server %d, want 10 from the replica (2)", i, w, srv)
			}
		}
		for _, q := range []string{
			"SELECT writer, @@server_id FROM t WHERE id = ? FOR UPDATE",
			"SELECT writer, @@server_id FROM t WHERE id = ? LOCK IN SHARE MODE",
			"SELECT /*+ PRIMARY */ writer, @@server_id FROM t WHERE id = ?",
		} {
			if _, srv := readRow(t, db, q, 1); srv != 1 {
				t.Errorf("%s: answered by server %d, want the primary (1)", q, srv)
			}
		}
		// Server-side prepared statements (go-sql-driver's default for queries with arguments).
		prep := p.open(t, appUser, appPass, "fo")
		for i := range 5 {
			if w, srv := readRow(t, prep, readQ, 1); srv != 2 || w != 10 {
				t.Fatalf("prepared read %d: writer %d from server %d, want 10 from the replica (2)", i, w, srv)
			}
		}
		if _, srv := readRow(t, prep, "SELECT writer, @@server_id FROM t WHERE id = ? FOR UPDATE", 1); srv != 1 {
			t.Errorf("prepared FOR UPDATE answered by server %d, want the primary (1)", srv)
		}
		tx, err := db.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, srv := readRow(t, tx, readQ, 1); srv != 1 {
			t.Errorf("a read inside a transaction answered by server %d, want the primary (1)", srv)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		var srv int
		if err := db.QueryRowContext(t.Context(), "SELECT @@server_id FROM (SELECT 1) x WHERE 1 = ?", 1).Scan(&srv); err != nil || srv != 2 {
			t.Errorf("after the transaction: server %d (%v), want the replica (2)", srv, err)
		}
	})

	t.Run("LaggingReplicaSkipped", func(t *testing.T) {
		g.srv[1].Exec(t, "STOP SLAVE SQL_THREAD")
		waitFor(t, 5*time.Second, "reads to leave the stopped replica", func() bool {
			_, srv := readRow(t, db, readQ, 1)
			return srv == 1
		})
		g.srv[0].Exec(t, "INSERT INTO fo.t (id, writer) VALUES (3, 30)")
		fresh := p.open(t, appUser, appPass, "fo", "interpolateParams=true")
		for i := range 20 {
			if w, srv := readRow(t, fresh, readQ, 3); srv != 1 || w != 30 {
				t.Fatalf("read %d with the replica stopped: writer %d from server %d, want 30 from the primary (1)", i, w, srv)
			}
		}
		g.srv[1].Exec(t, "START SLAVE SQL_THREAD")
		waitFor(t, 10*time.Second, "reads to come back to the replica", func() bool {
			_, srv := readRow(t, db, readQ, 3)
			return srv == 2
		})
	})

	t.Run("ReadYourWrites", func(t *testing.T) {
		ryw := p.open(t, "ryw", appPass, "fo", "interpolateParams=true")
		ryw.SetMaxOpenConns(1) // one proxy session
		other := p.open(t, "ryw", appPass, "fo", "interpolateParams=true")
		if _, err := ryw.ExecContext(t.Context(), "INSERT INTO t (id, writer) VALUES (?, 0)", 100); err != nil {
			t.Fatal(err)
		}
		g.sync(t, g.srv[0], g.srv[1])
		// A transaction on the replica holds row 100: the replica receives the next update
		// of it but cannot apply it (its SQL thread keeps running, waiting for the lock).
		lock, err := g.srv[1].DB(t, "").Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Close()
		if _, err := lock.ExecContext(t.Context(), "BEGIN"); err != nil {
			t.Fatal(err)
		}
		var w0 int
		if err := lock.QueryRowContext(t.Context(), "SELECT writer FROM fo.t WHERE id = 100 FOR UPDATE").Scan(&w0); err != nil {
			t.Fatal(err)
		}
		if _, err := ryw.ExecContext(t.Context(), "UPDATE t SET writer = 7 WHERE id = ?", 100); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		w, srv := readRow(t, ryw, readQ, 100)
		t.Logf("READ-YOUR-WRITES the writing session's read: writer %d from server %d after %v", w, srv, time.Since(start))
		if w != 7 {
			t.Errorf("the writing session read writer %d from server %d after its UPDATE, want its own 7", w, srv)
		}
		// The replica is really behind: a session that wrote nothing reads it there.
		if w, srv := readRow(t, other, readQ, 100); w != 0 || srv != 2 {
			t.Errorf("another session read writer %d from server %d, want the replica's stale 0 (the test's premise)", w, srv)
		}
		if _, err := lock.ExecContext(t.Context(), "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		g.sync(t, g.srv[0], g.srv[1])
		if w, srv := readRow(t, ryw, readQ, 100); w != 7 || srv != 2 {
			t.Errorf("once the replica applied the update: writer %d from server %d, want 7 from the replica (2)", w, srv)
		}
		// A transaction's writes count at its COMMIT.
		lockAgain(t, lock)
		tx, err := ryw.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(t.Context(), "UPDATE t SET writer = 8 WHERE id = ?", 100); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if w, srv := readRow(t, ryw, readQ, 100); w != 8 {
			t.Errorf("after COMMIT the writing session read writer %d from server %d, want 8", w, srv)
		}
		// A write through a server-side prepared statement counts too.
		prep := p.open(t, "ryw", appPass, "fo")
		prep.SetMaxOpenConns(1)
		if _, err := prep.ExecContext(t.Context(), "UPDATE t SET writer = ? WHERE id = ?", 9, 100); err != nil {
			t.Fatal(err)
		}
		var pw, psrv int
		if err := prep.QueryRowContext(t.Context(), "SELECT writer, @@server_id FROM t WHERE id = 100").Scan(&pw, &psrv); err != nil || pw != 9 {
			t.Errorf("after a prepared UPDATE the writing session read writer %d from server %d (%v), want 9", pw, psrv, err)
		}
		if _, err := lock.ExecContext(t.Context(), "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
	})
}

// lockAgain makes conn (on the replica) hold row 100 of fo.t in a transaction.
func lockAgain(t *testing.T, conn *sql.Conn) {
	t.Helper()
	if _, err := conn.ExecContext(t.Context(), "BEGIN"); err != nil {
		t.Fatal(err)
	}
	var w int
	if err := conn.QueryRowContext(t.Context(), "SELECT writer FROM fo.t WHERE id = 100 FOR UPDATE").Scan(&w); err != nil {
		t.Fatal(err)
	}
}
