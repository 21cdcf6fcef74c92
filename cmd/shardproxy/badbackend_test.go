package main

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardproxy/shardproxy/internal/badserver"
	"github.com/shardproxy/shardproxy/protocol"
	"github.com/shardproxy/shardproxy/router"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/topo"
)

// TestBadBackend runs the proxy's real wiring (protocol, router, topology and pools) in front
// of fake servers that answer with garbage at each point of a result set, and drives it with
// go-sql-driver: single-shard and scatter statements, text and prepared. Each time the
// client must get an error with a server-range code (or a closed connection), the proxy must
// not panic, and the next client must be served. A panic in any goroutine of the proxy
// would end this test binary.
func TestBadBackend(t *testing.T) {
	bad, good := badserver.Start(t), badserver.StartGood(t)
	addr, logs := startTestProxy(t, fmt.Sprintf(badBackendConfig, protocol.HashNative("pw"), bad.Addr(), good.Addr()))
	open := func(db string) *sql.DB {
		h, err := sql.Open("mysql", fmt.Sprintf("app:pw@tcp(%s)/%s?timeout=5s&readTimeout=20s&writeTimeout=20s", addr, db))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		return h
	}
	one, two, three := open("one"), open("two"), open("three")
	healthy := func(t *testing.T) {
		t.Helper()
		for _, q := range []struct {
			db  *sql.DB
			sql string
		}{{one, "SELECT v FROM t1"}, {two, "SELECT v FROM t"}} {
			var v string
			if err := q.db.QueryRow(q.sql).Scan(&v); err != nil || v != "1" {
				t.Fatalf("%s after the bad answer: %q, %v; want the proxy serving", q.sql, v, err)
			}
		}
	}
	healthy(t)

	type shape struct {
		name string
		db   *sql.DB
		sql  string // %s: the marker
	}
	shapes := []shape{
		{"single", one, "SELECT v FROM t1 WHERE v <> '%s'"},
		{"scatter", two, "SELECT v FROM t WHERE v <> '%s'"},
		{"scatter-all-bad", three, "SELECT v FROM t WHERE v <> '%s'"},
	}
	for _, sh := range shapes {
		for _, scenario := range badserver.Scenarios {
			for _, prepared := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/text", sh.name, scenario)
				if prepared {
					name = fmt.Sprintf("%s/%s/prepared", sh.name, scenario)
				}
				t.Run(name, func(t *testing.T) {
					q := fmt.Sprintf(sh.sql, "bad:"+scenario)
					var args []any
					if prepared {
						q += " AND v <> ?"
						args = append(args, "x")
					}
					start := time.Now()
					err := drain(sh.db, q, args...)
					checkBadAnswer(t, err)
					if d := time.Since(start); d > 10*time.Second {
						t.Errorf("the error took %v: a malformed packet went unnoticed until a timeout", d)
					}
					healthy(t)
				})
			}
		}
	}
	for _, scenario := range badserver.PrepareScenarios {
		t.Run("prepare/"+scenario, func(t *testing.T) {
			_, err := one.Prepare(fmt.Sprintf("SELECT v FROM t1 WHERE v <> 'badprep:%s' AND v <> ?", scenario))
			checkBadAnswer(t, err)
			healthy(t)
		})
	}
	if l := logs.String(); strings.Contains(l, "panic") {
		t.Errorf("the proxy logged a panic:\n%s", l)
	}
}

// drain runs q and reads all its rows.
func drain(db *sql.DB, q string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

// checkBadAnswer accepts an ERR with a server-range code, or a connection the proxy closed.
func checkBadAnswer(t *testing.T, err error) {
	t.Helper()
	var me *mysql.MySQLError
	switch {
	case err == nil:
		t.Fatal("the statement succeeded over a malformed answer")
	case errors.As(err, &me):
		if me.Number >= 2000 && me.Number < 3000 || me.Number == 0 {
			t.Errorf("ERR packet with code %d (%s): not a server-range code", me.Number, me)
		}
		if me.Number == 3024 {
			t.Errorf("the malformed answer was noticed only at the statement deadline: %v", me)
		}
	case errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, driver.ErrBadConn):
		// The proxy closed the connection: outcome unknown.
	default:
		t.Errorf("client error %v (%T): want an ERR packet or a closed connection", err, err)
	}
}

// badBackendConfig: database one on a single shard of the bad server; database two with
// table t sharded over the bad server (s0) and a good one (s1); database three with table t
// sharded over two shards of the bad server.
const badBackendConfig = `
listen: 127.0.0.1:0
server:
  max_execution_time: "15s"
users:
  - name: app
    password_hash: "%s"
backends:
  - {name: bad, addr: "%s", user: u, password: p, pool: {max_open: 8, dial_timeout: "2s", acquire_timeout: "5s"}}
  - {name: good, addr: "%s", user: u, password: p, pool: {max_open: 8, dial_timeout: "2s", acquire_timeout: "5s"}}
shards:
  - {name: s0, primary: bad, database: two_0}
  - {name: s1, primary: good, database: two_1}
  - {name: s2, primary: bad, database: one_0}
  - {name: s3, primary: bad, database: three_0}
  - {name: s4, primary: bad, database: three_1}
schemes:
  - {name: h, function: hash, shards: [s0, s1]}
  - {name: h2, function: hash, shards: [s3, s4]}
databases:
  - name: one
    default_shard: s2
  - name: two
    default_shard: s0
    tables:
      - {name: t, kind: sharded, key: id, scheme: h}
  - name: three
    default_shard: s3
    tables:
      - {name: t, kind: sharded, key: id, scheme: h2}
`

// lockedBuffer collects log output from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startTestProxy wires the proxy as serve does (without XA recovery) for the configuration
// text cfg, on a loopback port; the test's cleanup stops it.
func startTestProxy(t *testing.T, cfg string) (string, *lockedBuffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shardproxy.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	snap, err := loadSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store := rules.NewStore(snap)
	cl, err := topo.New(snap, topo.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	rt := router.New(router.Options{Rules: store, Backend: cl, Logger: log, Metrics: newMetrics(reg)})
	srvCfg := snap.Server()
	srv, err := protocol.NewServer(protocol.Options{MaxAllowedPacket: int(srvCfg.MaxAllowedPacket), Logger: log}, users{store}, handler{r: rt})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
		cl.Close()
		if t.Failed() {
			t.Logf("proxy log:\n%s", logs)
		}
	})
	return ln.Addr().String(), logs
}
