package protocol

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/shardproxy/shardproxy/wire"
)

// Loopback tests with a real client: go-sql-driver/mysql through database/sql.

func dsn(addr, user, pw string, edit func(*mysql.Config)) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, pw, "tcp", addr
	if edit != nil {
		edit(cfg)
	}
	return cfg.FormatDSN()
}

func openDB(t *testing.T, addr, user, pw string, edit func(*mysql.Config)) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn(addr, user, pw, edit))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// mysqlErr asserts that err is a MySQL error with code and SQLSTATE.
func mysqlErr(t *testing.T, err error, code uint16, state string) {
	t.Helper()
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		t.Fatalf("err = %v (%T), want MySQL error %d", err, err, code)
	}
	if me.Number != code || string(me.SQLState[:]) != state {
		t.Errorf("err = %d (%s) %s, want %d (%s)", me.Number, me.SQLState[:], me.Message, code, state)
	}
}

// tap records what the server writes on each accepted connection.
type tap struct {
	net.Listener
	mu  sync.Mutex
	out []*bytes.Buffer
}

type tapConn struct {
	net.Conn
	t   *tap
	buf *bytes.Buffer
}

func (l *tap) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := &bytes.Buffer{}
	l.out = append(l.out, b)
	return &tapConn{Conn: nc, t: l, buf: b}, nil
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.t.mu.Lock()
	c.buf.Write(p)
	c.t.mu.Unlock()
	return c.Conn.Write(p)
}

// sent returns a copy of what the server wrote on its i-th connection.
func (l *tap) sent(i int) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.out[i].Bytes())
}

func TestDriverNative(t *testing.T) {
	ts := startServer(t, Options{})
	db := openDB(t, ts.addr, nativeUser, password, nil)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec("hello")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 5 {
		t.Errorf("rows affected %d", n)
	}
	var one int
	if err := db.QueryRow("SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Errorf("SELECT 1 = %d, %v", one, err)
	}
	_, err = db.Exec("error")
	mysqlErr(t, err, 1146, "42S02")
	info := ts.h.session(t, 0).info
	if info.Attributes["_client_name"] != "Go-MySQL-Driver" {
		t.Errorf("attributes %v", info.Attributes)
	}
	if info.Capabilities&capDeprecateEOF != 0 {
		t.Error("CLIENT_DEPRECATE_EOF agreed though never offered")
	}
}

// TestDriverSha2: go-sql-driver over plain TCP asks for the RSA public key on the first
// (full) authentication; the second login takes the fast path and needs no key.
func TestDriverSha2(t *testing.T) {
	var l *tap
	ts := startServerOn(t, Options{}, func(ln net.Listener) net.Listener { l = &tap{Listener: ln}; return l })
	for i := range 2 {
		db := openDB(t, ts.addr, sha2User, password, nil)
		if err := db.Ping(); err != nil {
			t.Fatalf("login %d: %v", i+1, err)
		}
		_ = db.Close()
	}
	pemHeader := []byte("-----BEGIN PUBLIC KEY-----")
	if !bytes.Contains(l.sent(0), pemHeader) {
		t.Error("first login: the server sent no public key (full authentication expected)")
	}
	if bytes.Contains(l.sent(1), pemHeader) || !bytes.Contains(l.sent(1), []byte{0x02, 0x00, 0x00, 0x04, 0x01, 0x03}) {
		t.Errorf("second login did not take the fast path: server sent %q", l.sent(1))
	}
}

func TestDriverAuthErrors(t *testing.T) {
	ts := startServer(t, Options{})
	cases := []struct{ name, user, pw string }{
		{"native wrong password", nativeUser, "wrong"},
		{"sha2 wrong password", sha2User, "wrong"},
		{"unknown user", "ghost", password},
		{"native empty password", nativeUser, ""},
		{"sha2 empty password", sha2User, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t, ts.addr, tc.user, tc.pw, nil)
			mysqlErr(t, db.Ping(), 1045, "28000")
		})
	}
	if ts.h.count() != 0 {
		t.Errorf("%d sessions created for failed logins", ts.h.count())
	}
}

func TestDriverTLS(t *testing.T) {
	ts := startServer(t, Options{TLS: &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}})
	for i, user := range []string{nativeUser, sha2User} {
		db := openDB(t, ts.addr, user, password, func(c *mysql.Config) { c.TLSConfig = "skip-verify" })
		var one int
		if err := db.QueryRow("SELECT 1").Scan(&one); err != nil {
			t.Fatalf("%s over TLS: %v", user, err)
		}
		if !ts.h.session(t, i).info.TLS {
			t.Errorf("%s: ConnInfo.TLS = false", user)
		}
		_ = db.Close()
	}
	if _, ok := ts.sha2.get(sha2User, mustLookup(t, ts, sha2User)); !ok {
		t.Error("full authentication over TLS did not fill the cache")
	}
	db := openDB(t, ts.addr, nativeUser, "wrong", func(c *mysql.Config) { c.TLSConfig = "skip-verify" })
	mysqlErr(t, db.Ping(), 1045, "28000")

	plain := startServer(t, Options{})
	db = openDB(t, plain.addr, nativeUser, password, func(c *mysql.Config) { c.TLSConfig = "true" })
	if err := db.Ping(); !errors.Is(err, mysql.ErrNoTLS) {
		t.Errorf("TLS required against a server without TLS: %v, want ErrNoTLS", err)
	}
}

func TestDriverMaxConnections(t *testing.T) {
	ts := startServer(t, Options{MaxConnections: 1})
	db := openDB(t, ts.addr, nativeUser, password, nil)
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	other := openDB(t, ts.addr, nativeUser, password, nil)
	mysqlErr(t, other.Ping(), 1040, "08004")
	if err := conn.PingContext(t.Context()); err != nil {
		t.Errorf("the admitted connection: %v", err)
	}
}

func TestDriverPrepared(t *testing.T) {
	ts := startServer(t, Options{})
	db := openDB(t, ts.addr, nativeUser, password, func(c *mysql.Config) { c.MaxAllowedPacket = 4096 })
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("INSERT ?, ?, ?", int64(-7), "abc", nil); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789"), 1000) // above the driver's long-data threshold
	if _, err := db.Exec("INSERT ?", big); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := db.QueryRow("SELECT ?", 1).Scan(&n); err != nil || n != 42 {
		t.Errorf("prepared SELECT = %d, %v", n, err)
	}
	s := ts.h.session(t, 0)
	ex := s.Execs()
	if len(ex) != 3 {
		t.Fatalf("%d executions", len(ex))
	}
	// go-sql-driver sends int64 as MYSQL_TYPE_LONGLONG, strings and []byte as
	// MYSQL_TYPE_STRING, nil as MYSQL_TYPE_NULL.
	assertParams(t, 0, ex[0].params, []Param{
		{Type: typeLongLong, Value: le64(uint64(1<<64 - 7))},
		{Type: typeString, Value: []byte("\x03abc")},
		{Type: typeNull, Null: true},
	})
	assertParams(t, 1, ex[1].params, []Param{{Type: typeString, Value: wire.AppendLenencString(nil, string(big))}})
	// database/sql closes each statement it prepared for a one-off call.
	waitFor(t, "the statements to be closed", func() bool { return len(s.ClosedStmts()) == 3 })
}

// TestDriverShutdown: a statement in flight completes, idle connections close, Shutdown
// returns once all are gone.
func TestDriverShutdown(t *testing.T) {
	ts := startServer(t, Options{})
	db := openDB(t, ts.addr, nativeUser, password, nil)
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	idle := loginNative(t, ts.addr)
	result := make(chan error, 1)
	go func() {
		_, err := conn.ExecContext(context.Background(), "block")
		result <- err
	}()
	<-ts.h.started
	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(context.Background()) }()
	idle.expectClosed()
	close(ts.h.release)
	if err := <-result; err != nil {
		t.Errorf("the statement in flight failed: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if err := conn.PingContext(t.Context()); err == nil {
		t.Error("the connection survived Shutdown")
	}
}

func TestDriverClose(t *testing.T) {
	ts := startServer(t, Options{})
	db := openDB(t, ts.addr, nativeUser, password, nil)
	result := make(chan error, 1)
	go func() {
		_, err := db.Exec("block")
		result <- err
	}()
	<-ts.h.started
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-result; err == nil {
		t.Error("a statement cut by Close succeeded")
	}
	calls := ts.h.session(t, 0).Calls()
	if calls[len(calls)-1] != "Close" {
		t.Errorf("calls %q", calls)
	}
}

func TestDriverPanic(t *testing.T) {
	ts := startServer(t, Options{})
	db := openDB(t, ts.addr, nativeUser, password, nil)
	db.SetMaxIdleConns(0)
	if _, err := db.Exec("panic"); err == nil {
		t.Fatal("the panicking statement succeeded")
	}
	ts.h.session(t, 0).waitClosed(t)
	if err := db.Ping(); err != nil {
		t.Errorf("the server stopped serving after a panic: %v", err)
	}
}
