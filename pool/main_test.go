package pool

import (
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
	"github.com/shardproxy/shardproxy/wire"
)

func TestMain(m *testing.M) {
	// This machine has /.dockerenv, so testcontainers takes the default gateway for the
	// Docker host and dials the mapped ports there; the ports are published on loopback.
	if _, ok := os.LookupEnv("TESTCONTAINERS_HOST_OVERRIDE"); !ok {
		_ = os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
	// No goleak ignores are needed: testcontainers' Docker client leaves no goroutine
	// behind once the container is terminated (checked by running without any).
	goleak.VerifyTestMain(m)
}

// env is the MariaDB server shared by the subtests of TestPool.
type env struct {
	srv  *mariadbtest.Server
	root *sql.DB
	seq  atomic.Int64
}

// newPool creates a user of its own for the calling test (so server-side counts by user
// see only this test's connections) and a pool for it, closed by t.Cleanup.
func (e *env) newPool(t *testing.T, set func(*Options)) (*Pool, string) {
	t.Helper()
	user := fmt.Sprintf("pool_t%d", e.seq.Add(1))
	e.exec(t, "CREATE USER '"+user+"'@'%' IDENTIFIED BY 'pw'",
		"GRANT ALL PRIVILEGES ON *.* TO '"+user+"'@'%'")
	opts := Options{
		Addr:     e.srv.Addr(),
		User:     user,
		Password: "pw",
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if set != nil {
		set(&opts)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, user
}

// exec runs statements as root.
func (e *env) exec(t *testing.T, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := e.root.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("root: %q: %v", q, err)
		}
	}
}

// sessions counts the server's connections of user.
func (e *env) sessions(t *testing.T, user string) int {
	t.Helper()
	var n int
	err := e.root.QueryRowContext(t.Context(),
		"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", user).Scan(&n)
	if err != nil {
		t.Fatalf("counting sessions: %v", err)
	}
	return n
}

// alive reports whether the server still has connection id.
func (e *env) alive(t *testing.T, id uint32) bool {
	t.Helper()
	var n int
	err := e.root.QueryRowContext(t.Context(),
		"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&n)
	if err != nil {
		t.Fatalf("looking up connection %d: %v", id, err)
	}
	return n > 0
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// acquire acquires a connection, failing the test on error.
func acquire(t testing.TB, p *Pool) *Conn {
	t.Helper()
	c, err := p.Acquire(t.Context())
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return c
}

// exec runs q on c, failing the test on error.
func exec(t testing.TB, c *Conn, q string) wire.OK {
	t.Helper()
	ok, err := c.Exec(t.Context(), q)
	if err != nil {
		t.Fatalf("Exec(%q): %v", q, err)
	}
	return ok
}

// queryValue runs a query returning one row of one column through c's wire.Conn and returns
// the value ("NULL" for NULL). It exercises the raw relay path callers use.
func queryValue(t testing.TB, c *Conn, q string) string {
	t.Helper()
	w := c.Wire()
	w.ResetSeq()
	if err := w.WritePacket(append([]byte{0x03}, q...)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	read := func() []byte {
		p, err := w.ReadPacket()
		if err != nil {
			c.State().MarkBroken()
			t.Fatalf("%q: %v", q, err)
		}
		if wire.IsErr(p) {
			t.Fatalf("%q: %v", q, wire.ParseErr(p))
		}
		return p
	}
	read() // column count
	for !wire.IsEOF(read()) {
	}
	s, isNull, _ := wire.LenencString(read())
	v := string(s)
	if isNull {
		v = "NULL"
	}
	for {
		p := read()
		if wire.IsEOF(p) {
			st, _ := wire.Status(p)
			c.State().SetStatus(st)
			return v
		}
	}
}
