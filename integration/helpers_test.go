package integration

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
)

// Accounts every proxy of the suite knows.
const (
	appUser, appPass     = "app", "apppw"           // mysql_native_password, first database only
	sha2User, sha2Pass   = "sha2user", "sha2pw"     // caching_sha2_password, every database
	otherUser, otherPass = "other", "otherpw"       // mysql_native_password, every database but the first
	nativeAll, nativePw2 = "allnative", "allnative" // mysql_native_password, every database
)

// env is the MariaDB server shared by the subtests of TestProxy, and the password hashes of
// the proxy accounts (made once with `shardproxy hash-password`).
type env struct {
	srv        *mariadbtest.Server
	root       *sql.DB // root without a default database
	appHash    string
	sha2Hash   string
	otherHash  string
	nativeHash string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := mariadbtest.Start(t)
	e := &env{srv: srv, root: srv.DB(t, "")}
	e.appHash = hashPassword(t, "mysql_native_password", appPass)
	e.sha2Hash = hashPassword(t, "caching_sha2_password", sha2Pass)
	e.otherHash = hashPassword(t, "native", otherPass)
	e.nativeHash = hashPassword(t, "native", nativePw2)
	return e
}

// hashPassword runs `shardproxy hash-password`.
func hashPassword(t *testing.T, plugin, pw string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), proxyBin, "hash-password", "--plugin", plugin, pw).Output()
	if err != nil {
		t.Fatalf("shardproxy hash-password --plugin %s: %v", plugin, err)
	}
	return strings.TrimSpace(string(out))
}

// rootExec runs statements on MariaDB directly, as root.
func (e *env) rootExec(t testing.TB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := e.root.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("root on MariaDB: %q: %v", q, err)
		}
	}
}

// direct opens a root handle on a physical database of MariaDB, bypassing the proxy.
func (e *env) direct(t testing.TB, db string, params ...string) *sql.DB {
	t.Helper()
	dsn := fmt.Sprintf("%s:%s@tcp(%s)/%s", e.srv.User, e.srv.Password, e.srv.Addr(), db)
	if len(params) > 0 {
		dsn += "?" + strings.Join(params, "&")
	}
	return openDB(t, dsn)
}

func openDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("sql.Open(%q): %v", dsn, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// dbMap is one logical database of a proxy and the physical database that holds it.
type dbMap struct{ Logical, Physical string }

// proxyConfig is the YAML configuration of a proxy, written as JSON (a subset of YAML).
type proxyConfig struct {
	Listen    string           `json:"listen"`
	Server    map[string]any   `json:"server,omitempty"`
	Users     []userConfig     `json:"users"`
	Backends  []backendConfig  `json:"backends"`
	Shards    []shardConfig    `json:"shards"`
	Schemes   []map[string]any `json:"schemes,omitempty"`
	Databases []databaseConfig `json:"databases"`
	Health    map[string]any   `json:"health,omitempty"`
	Admin     map[string]any   `json:"admin,omitempty"`
}

type userConfig struct {
	Name             string   `json:"name"`
	PasswordHash     string   `json:"password_hash"`
	Databases        []string `json:"databases,omitempty"`
	Admin            bool     `json:"admin,omitempty"`
	MaxExecutionTime string   `json:"max_execution_time,omitempty"`
	ReadWriteSplit   bool     `json:"read_write_split,omitempty"`
	MaxReplicaLag    string   `json:"max_replica_lag,omitempty"`
}

type backendConfig struct {
	Name     string     `json:"name"`
	Addr     string     `json:"addr"`
	User     string     `json:"user"`
	Password string     `json:"password"`
	Pool     poolConfig `json:"pool"`
	// ReplicationAddr is where the other servers of the shard reach this one.
	ReplicationAddr string `json:"replication_addr,omitempty"`
}

type poolConfig struct {
	MaxOpen        int    `json:"max_open,omitempty"`
	MaxIdle        int    `json:"max_idle,omitempty"`
	AcquireTimeout string `json:"acquire_timeout,omitempty"`
	IdleTimeout    string `json:"idle_timeout,omitempty"`
	DialTimeout    string `json:"dial_timeout,omitempty"`
}

type shardConfig struct {
	Name     string         `json:"name"`
	Primary  string         `json:"primary"`
	Replicas []string       `json:"replicas,omitempty"`
	Database string         `json:"database"`
	Failover map[string]any `json:"failover,omitempty"`
}

type databaseConfig struct {
	Name             string           `json:"name"`
	DefaultShard     string           `json:"default_shard"`
	Tables           []map[string]any `json:"tables,omitempty"`
	MaxExecutionTime string           `json:"max_execution_time,omitempty"`
	ReadWriteSplit   bool             `json:"read_write_split,omitempty"`
	MaxReplicaLag    string           `json:"max_replica_lag,omitempty"`
}

// config returns a proxy configuration serving dbs (created on MariaDB if missing), each on
// a shard of its own on the one backend. app may use dbs[0] only, other every database but
// dbs[0], sha2user and allnative all of them.
func (e *env) config(t testing.TB, dbs ...dbMap) *proxyConfig {
	t.Helper()
	cfg := &proxyConfig{
		Listen: "127.0.0.1:0",
		Server: map[string]any{"drain_timeout": "15s"},
		Backends: []backendConfig{{
			Name: "b0", Addr: e.srv.Addr(), User: e.srv.User, Password: e.srv.Password,
			Pool: poolConfig{MaxOpen: 20, MaxIdle: 10},
		}},
	}
	var others []string
	for i, d := range dbs {
		e.rootExec(t, "CREATE DATABASE IF NOT EXISTS `"+d.Physical+"`")
		shard := fmt.Sprintf("s%d", i)
		cfg.Shards = append(cfg.Shards, shardConfig{Name: shard, Primary: "b0", Database: d.Physical})
		cfg.Databases = append(cfg.Databases, databaseConfig{Name: d.Logical, DefaultShard: shard})
		if i > 0 {
			others = append(others, d.Logical)
		}
	}
	cfg.Users = []userConfig{
		{Name: appUser, PasswordHash: e.appHash, Databases: []string{dbs[0].Logical}},
		{Name: sha2User, PasswordHash: e.sha2Hash},
		{Name: nativeAll, PasswordHash: e.nativeHash},
	}
	if len(others) > 0 {
		cfg.Users = append(cfg.Users, userConfig{Name: otherUser, PasswordHash: e.otherHash, Databases: others})
	}
	return cfg
}

// backendUser gives the proxy a MariaDB account of its own, so that the backend's
// processlist and general log can be filtered by it.
func (e *env) backendUser(t testing.TB, cfg *proxyConfig, user string) {
	t.Helper()
	e.rootExec(t,
		"CREATE USER IF NOT EXISTS '"+user+"'@'%' IDENTIFIED BY 'backendpw'",
		"GRANT ALL PRIVILEGES ON *.* TO '"+user+"'@'%'")
	cfg.Backends[0].User, cfg.Backends[0].Password = user, "backendpw"
}

// proxy is a running `shardproxy serve` process, stopped by t.Cleanup.
type proxy struct {
	Addr string
	cmd  *exec.Cmd
	log  *logBuffer
	done chan struct{} // closed when the process has exited
	err  error         // the process's exit status, valid once done is closed
}

// startProxy writes cfg to a file and runs the proxy on a free loopback port. Cleanup stops
// it with SIGTERM and fails the test if it does not exit 0, or if a connection panicked.
func startProxy(t *testing.T, cfg *proxyConfig) *proxy {
	t.Helper()
	return startProxyWith(t, cfg, nil)
}

// startProxyArgs is startProxy with more command-line flags for `shardproxy serve`.
func startProxyArgs(t *testing.T, cfg *proxyConfig, args ...string) *proxy {
	t.Helper()
	return startProxyWith(t, cfg, nil, args...)
}

// startProxyEnv is startProxy with extra environment variables ("NAME=value") for the
// proxy process.
func startProxyEnv(t *testing.T, cfg *proxyConfig, env ...string) *proxy {
	t.Helper()
	return startProxyWith(t, cfg, env)
}

func startProxyWith(t *testing.T, cfg *proxyConfig, env []string, args ...string) *proxy {
	t.Helper()
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "shardproxy.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return launchProxy(t, string(data), env, append([]string{"--config", path}, args...)...)
}

// launchProxy runs `shardproxy serve ARGS --listen 127.0.0.1:0` and waits for its listening
// line; describe is shown if it fails to start.
func launchProxy(t *testing.T, describe string, env []string, args ...string) *proxy {
	t.Helper()
	data := describe
	p := &proxy{log: newLogBuffer(), done: make(chan struct{})}
	p.cmd = exec.Command(proxyBin, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-level", "debug"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if len(env) > 0 {
		p.cmd.Env = append(os.Environ(), env...)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting shardproxy: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.cleanup(t) })
	select {
	case p.Addr = <-p.log.addr:
	case <-p.done:
		t.Fatalf("shardproxy exited before listening (%v); config:\n%s\nlog:\n%s", p.err, data, p.log)
	case <-time.After(30 * time.Second):
		t.Fatalf("shardproxy did not log its listening address within 30s; log:\n%s", p.log)
	}
	return p
}

func (p *proxy) cleanup(t *testing.T) {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(45 * time.Second):
			t.Errorf("shardproxy did not exit within 45s of SIGTERM; its goroutines (SIGQUIT):\n%s", p.dumpStacks())
		}
		if p.err != nil {
			t.Errorf("shardproxy exited with %v after SIGTERM, want status 0", p.err)
		}
	}
	if logs := p.log.String(); strings.Contains(logs, "panicked") || strings.Contains(logs, "panic:") || strings.Contains(logs, "DATA RACE") {
		t.Errorf("shardproxy log shows a panic or a data race:\n%s", logs)
	} else if lines := internalErrors(logs); lines != "" {
		t.Errorf("shardproxy answered with internal errors (1105):\n%s", lines)
	} else if t.Failed() {
		t.Logf("shardproxy log (last 8 KiB):\n%s", tail(logs, 8<<10))
	}
}

// dumpStacks makes a hung proxy print every goroutine's stack (Go's SIGQUIT handler writes
// them to stderr, which p.log captures), waits for the process to exit, killing it if the
// dump does not end it within 10s, and returns the stacks from the log (their first 64 KiB).
func (p *proxy) dumpStacks() string {
	before := len(p.log.String())
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	logs := p.log.String()
	dump := logs[before:]
	if i := strings.Index(dump, "SIGQUIT"); i >= 0 {
		dump = dump[i:]
	}
	// goroutine 1 (serve's shutdown) and the long-lived goroutines come first.
	if len(dump) > 64<<10 {
		dump = dump[:64<<10] + "…"
	}
	return dump
}

func (p *proxy) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits for the process; it returns the exit status.
func (p *proxy) stop(t *testing.T, timeout time.Duration) error {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("shardproxy did not exit within %v of SIGTERM; its goroutines (SIGQUIT):\n%s", timeout, p.dumpStacks())
		return nil
	}
}

// dsn is a go-sql-driver DSN for the proxy.
func (p *proxy) dsn(user, pass, db string, params ...string) string {
	params = append([]string{"timeout=10s", "readTimeout=120s", "writeTimeout=120s"}, params...)
	return fmt.Sprintf("%s:%s@tcp(%s)/%s?%s", user, pass, p.Addr, db, strings.Join(params, "&"))
}

// open returns a database/sql handle on the proxy, closed by t.Cleanup.
func (p *proxy) open(t testing.TB, user, pass, db string, params ...string) *sql.DB {
	t.Helper()
	return openDB(t, p.dsn(user, pass, db, params...))
}

// logBuffer collects a process's output and reports the address of its listening line.
type logBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	line []byte
	addr chan string
	sent bool
}

var listeningRE = regexp.MustCompile(`msg="shardproxy listening" addr=(\S+)`)

func newLogBuffer() *logBuffer { return &logBuffer{addr: make(chan string, 1)} }

func (l *logBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(b)
	l.line = append(l.line, b...)
	for {
		i := bytes.IndexByte(l.line, '\n')
		if i < 0 {
			break
		}
		if m := listeningRE.FindSubmatch(l.line[:i]); m != nil && !l.sent {
			l.sent = true
			l.addr <- string(m[1])
		}
		l.line = l.line[i+1:]
	}
	return len(b), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// eventually polls cond until it returns nil or timeout passes; the last error is reported.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// querier is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// result is a whole result set as the driver returned it.
type result struct {
	Columns []string
	Types   []string // DatabaseTypeName of each column
	Rows    [][]any  // driver values: []byte, int64, uint64, float32/64, time.Time, nil
}

// query runs a query and reads its whole result, failing the test on error.
func query(t testing.TB, q querier, sqlText string, args ...any) result {
	t.Helper()
	r, err := tryQuery(q, sqlText, args...)
	if err != nil {
		t.Fatalf("%q: %v", sqlText, err)
	}
	return r
}

func tryQuery(q querier, sqlText string, args ...any) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rows, err := q.QueryContext(ctx, sqlText, args...)
	if err != nil {
		return result{}, err
	}
	defer rows.Close()
	var r result
	if r.Columns, err = rows.Columns(); err != nil {
		return r, err
	}
	cts, err := rows.ColumnTypes()
	if err != nil {
		return r, err
	}
	for _, ct := range cts {
		r.Types = append(r.Types, ct.DatabaseTypeName())
	}
	for rows.Next() {
		vals := make([]any, len(r.Columns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return r, err
		}
		r.Rows = append(r.Rows, vals)
	}
	return r, rows.Err()
}

// queryString runs a query whose result is one value and returns it as text ("NULL" for NULL).
func queryString(t testing.TB, q querier, sqlText string, args ...any) string {
	t.Helper()
	r := query(t, q, sqlText, args...)
	if len(r.Rows) != 1 || len(r.Rows[0]) != 1 {
		t.Fatalf("%q: want one value, got %d rows: %v", sqlText, len(r.Rows), r.Rows)
	}
	return text(r.Rows[0][0])
}

// text formats a driver value for messages and comparisons.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return string(v)
	case time.Time:
		return v.Format("2006-01-02 15:04:05.999999")
	}
	return fmt.Sprint(v)
}

// mustExec runs statements, failing the test on error.
func mustExec(t testing.TB, q querier, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		_, err := q.ExecContext(ctx, s)
		cancel()
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
	}
}

// sameResult fails the test when the proxy's result differs from MariaDB's.
func sameResult(t testing.TB, what string, viaProxy, direct result) {
	t.Helper()
	if !reflect.DeepEqual(viaProxy.Columns, direct.Columns) {
		t.Errorf("%s: columns through the proxy %q, directly %q", what, viaProxy.Columns, direct.Columns)
	}
	if !reflect.DeepEqual(viaProxy.Types, direct.Types) {
		t.Errorf("%s: column types through the proxy %q, directly %q", what, viaProxy.Types, direct.Types)
	}
	if len(viaProxy.Rows) != len(direct.Rows) {
		t.Fatalf("%s: %d rows through the proxy, %d directly", what, len(viaProxy.Rows), len(direct.Rows))
	}
	for i := range direct.Rows {
		for j := range direct.Rows[i] {
			a, b := viaProxy.Rows[i][j], direct.Rows[i][j]
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s: row %d column %s: through the proxy %T %q, directly %T %q",
					what, i, direct.Columns[j], a, text(a), b, text(b))
			}
		}
	}
}

// wantError fails the test unless err is a MySQL error with code and SQLSTATE.
func wantError(t testing.TB, err error, code uint16, state string) {
	t.Helper()
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		t.Errorf("got error %v (%T), want MySQL error %d (%s)", err, err, code, state)
		return
	}
	if me.Number != code || string(me.SQLState[:]) != state {
		t.Errorf("got error %d (%s) %q, want %d (%s)", me.Number, me.SQLState[:], me.Message, code, state)
	}
}

// requireTool returns the path of a command-line tool; it skips loudly when it is missing,
// and fails under CI=true, where the suite must run completely.
func requireTool(t *testing.T, path, pkg string) string {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if p, err := exec.LookPath(filepath.Base(path)); err == nil {
		return p
	}
	msg := fmt.Sprintf("*** %s IS NOT INSTALLED (apt-get install %s): this test is SKIPPED ***", path, pkg)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// grepLines returns the lines of s that contain substr.
func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// internalErrors returns the log lines of errors the proxy answered with ER_UNKNOWN_ERROR
// (1105): each is an error without a proper code.
func internalErrors(logs string) string { return grepLines(logs, `msg="internal error"`) }
