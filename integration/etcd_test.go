package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/shardproxy/shardproxy/internal/etcdtest"
	"github.com/shardproxy/shardproxy/internal/mariadbtest"
	"github.com/shardproxy/shardproxy/rules/source"
)

// etcdFleet is a MariaDB server with databases shop_0 and shop_1 (each with a table kv
// holding one row naming its database), an embedded etcd, and the proxies started on it.
type etcdFleet struct {
	srv    *mariadbtest.Server
	etcd   *etcdtest.Server
	push   *source.Etcd
	prefix string
	hash   string
	env    []string
}

const (
	fleetUser, fleetPass = "fleet", "fleetpw"
	fleetBackendPass     = "backendsecretpw"
)

func newEtcdFleet(t *testing.T) *etcdFleet {
	t.Helper()
	srv := mariadbtest.Start(t)
	srv.Exec(t,
		"CREATE USER 'spx'@'%' IDENTIFIED BY '"+fleetBackendPass+"'", "GRANT ALL PRIVILEGES ON *.* TO 'spx'@'%'",
		"CREATE DATABASE shop_0", "CREATE DATABASE shop_1",
		"CREATE TABLE shop_0.kv (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO shop_0.kv VALUES (1, 'zero')",
		"CREATE TABLE shop_1.kv (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO shop_1.kv VALUES (1, 'one')")
	f := &etcdFleet{srv: srv, etcd: etcdtest.Start(t), prefix: "/fleet-" + strings.ToLower(t.Name()) + "/",
		hash: hashPassword(t, "native", fleetPass), env: []string{"FLEET_B0_PW=" + fleetBackendPass}}
	var err error
	f.push, err = source.NewEtcd(source.EtcdOptions{Endpoints: []string{f.etcd.Endpoint()}, Prefix: f.prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.push.Close() })
	return f
}

// doc is the fleet's configuration with database shop's default shard (s0 or s1); extra
// is appended to the database's entry.
func (f *etcdFleet) doc(defaultShard, extra string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:3307
users:
  - {name: %s, password_hash: "%s"}
backends:
  - name: b0
    addr: "%s"
    user: spx
    password_env: FLEET_B0_PW
    pool: {max_open: 20}
shards:
  - {name: s0, primary: b0, database: shop_0}
  - {name: s1, primary: b0, database: shop_1}
databases:
  - {name: shop, default_shard: %s%s}
`, fleetUser, f.hash, f.srv.Addr(), defaultShard, extra)
}

// pushDoc writes a document to etcd (bypassing validation, as a careless operator could).
func (f *etcdFleet) pushDoc(t testing.TB, doc string) int64 {
	t.Helper()
	rev, err := f.push.Push(t.Context(), []byte(doc), -1)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// start runs a proxy on the fleet's prefix, keeping its last-known-good copy in lkg.
func (f *etcdFleet) start(t *testing.T, lkg string, args ...string) *proxy {
	t.Helper()
	return launchProxy(t, "etcd "+f.prefix, f.env, append([]string{"--etcd-endpoints", f.etcd.Endpoint(),
		"--etcd-prefix", f.prefix, "--last-known-good", lkg}, args...)...)
}

// cli runs `shardproxy config ...` against the fleet's etcd.
func (f *etcdFleet) cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), proxyBin, append(append([]string{"config"}, args...),
		"--etcd-endpoints", f.etcd.Endpoint(), "--etcd-prefix", f.prefix)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// observer queries SELECT v FROM kv in a loop on one connection of a proxy and publishes
// each value with the time it was first seen. Any error is kept and fails the test.
type observer struct {
	mu      sync.Mutex
	value   string
	since   time.Time
	changed chan struct{} // closed and replaced on every change
	queries atomic.Int64
	errs    []error
	connID  int64
}

func observe(t *testing.T, p *proxy) *observer {
	t.Helper()
	db := p.open(t, fleetUser, fleetPass, "shop")
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	o := &observer{changed: make(chan struct{})}
	if err := conn.QueryRowContext(t.Context(), "SELECT CONNECTION_ID()").Scan(&o.connID); err != nil {
		t.Fatal(err)
	}
	// Stopped by a flag, not by cancelling a query: go-sql-driver closes a connection whose
	// query is cancelled, and the connection must survive to the end.
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			var v string
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := conn.QueryRowContext(ctx, "SELECT v FROM kv WHERE id = 1").Scan(&v)
			cancel()
			o.queries.Add(1)
			o.mu.Lock()
			if err != nil {
				o.errs = append(o.errs, err)
			} else if v != o.value {
				o.value, o.since = v, time.Now()
				close(o.changed)
				o.changed = make(chan struct{})
			}
			o.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		stop.Store(true)
		<-done
		var id int64
		if err := conn.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil || id != o.connID {
			t.Errorf("observer's connection was dropped: CONNECTION_ID %d → %d (%v)", o.connID, id, err)
		}
		_ = conn.Close()
		if len(o.errs) > 0 {
			t.Errorf("a client saw %d errors during reloads, first: %v", len(o.errs), o.errs[0])
		}
	})
	return o
}

// waitFor returns when the observer has seen want, and when it first saw it.
func (o *observer) waitFor(t testing.TB, want string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.After(timeout)
	for {
		o.mu.Lock()
		v, since, ch := o.value, o.since, o.changed
		o.mu.Unlock()
		if v == want {
			return since
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("client still sees %q %v after the change to %q", v, timeout, want)
		}
	}
}

// valueOf maps a default shard to what kv says there.
func valueOf(shard string) string { return map[string]string{"s0": "zero", "s1": "one"}[shard] }

func TestEtcdConfig(t *testing.T) {
	f := newEtcdFleet(t)
	f.pushDoc(t, f.doc("s0", ""))
	dir := t.TempDir()
	lkg1, lkg2 := filepath.Join(dir, "p1.yaml"), filepath.Join(dir, "p2.yaml")
	p1, p2 := f.start(t, lkg1), f.start(t, lkg2)
	o1, o2 := observe(t, p1), observe(t, p2)
	o1.waitFor(t, "zero", 10*time.Second)
	o2.waitFor(t, "zero", 10*time.Second)
	shard := "s0"
	flip := func(t *testing.T) (int64, time.Duration) {
		t.Helper()
		shard = map[string]string{"s0": "s1", "s1": "s0"}[shard]
		t0 := time.Now()
		rev := f.pushDoc(t, f.doc(shard, ""))
		a, b := o1.waitFor(t, valueOf(shard), 10*time.Second), o2.waitFor(t, valueOf(shard), 10*time.Second)
		return rev, max(a.Sub(t0), b.Sub(t0))
	}

	t.Run("Convergence", func(t *testing.T) {
		var lat []time.Duration
		for range 100 {
			_, d := flip(t)
			lat = append(lat, d)
		}
		slices.Sort(lat)
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		t.Logf("two proxies converged on %d pushes: p50 %v, p99 %v, max %v (clients ran %d and %d queries, no errors)",
			len(lat), p50, p99, lat[len(lat)-1], o1.queries.Load(), o2.queries.Load())
		if p99 > 500*time.Millisecond {
			t.Errorf("p99 convergence %v exceeds 500ms", p99)
		}
	})

	t.Run("InvalidRejected", func(t *testing.T) {
		before := valueOf(shard)
		f.pushDoc(t, f.doc("s9", ""))
		for _, p := range []*proxy{p1, p2} {
			eventually(t, 10*time.Second, "rejection logged", func() error {
				if !strings.Contains(p.log.String(), `default_shard \"s9\" is not a shard`) {
					return fmt.Errorf("no rejection in the log")
				}
				return nil
			})
		}
		o1.waitFor(t, before, time.Second)
		o2.waitFor(t, before, time.Second)
		// The CLI refuses an invalid file with the validation error and writes nothing.
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		if err := os.WriteFile(bad, []byte(f.doc("s7", "")), 0o600); err != nil {
			t.Fatal(err)
		}
		revBefore, _ := f.push.Fetch(t.Context())
		out, err := f.cli(t, "push", bad)
		if err == nil || !strings.Contains(out, `default_shard "s7" is not a shard`) {
			t.Errorf("config push of an invalid file: %v\n%s", err, out)
		}
		plain := filepath.Join(t.TempDir(), "plain.yaml")
		doc := strings.Replace(f.doc("s0", ""), "password_env: FLEET_B0_PW", "password: "+fleetBackendPass, 1)
		if err := os.WriteFile(plain, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := f.cli(t, "push", plain); err == nil || !strings.Contains(out, "plaintext password") || strings.Contains(out, fleetBackendPass) {
			t.Errorf("config push of a plaintext password: %v\n%s", err, out)
		}
		if after, _ := f.push.Fetch(t.Context()); after.Revision != revBefore.Revision {
			t.Errorf("a refused push changed etcd: revision %d → %d", revBefore.Revision, after.Revision)
		}
		// A valid push through the CLI is applied by both, and config get shows it.
		shard = map[string]string{"s0": "s1", "s1": "s0"}[shard]
		good := filepath.Join(t.TempDir(), "good.yaml")
		if err := os.WriteFile(good, []byte(f.doc(shard, "")), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := f.cli(t, "push", good); err != nil || !strings.Contains(out, "at revision") {
			t.Fatalf("config push: %v\n%s", err, out)
		}
		o1.waitFor(t, valueOf(shard), 5*time.Second)
		o2.waitFor(t, valueOf(shard), 5*time.Second)
		live, _ := f.push.Fetch(t.Context())
		out, err = f.cli(t, "get")
		if err != nil || !strings.Contains(out, fmt.Sprintf("revision %d", live.Revision)) || !strings.Contains(out, "default_shard: "+shard) {
			t.Errorf("config get: %v\n%s", err, out)
		}
	})

	t.Run("EtcdRestart", func(t *testing.T) {
		f.etcd.Stop()
		n1 := o1.queries.Load()
		o1.waitFor(t, valueOf(shard), time.Second)
		eventually(t, 10*time.Second, "clients keep querying while etcd is down", func() error {
			if o1.queries.Load() < n1+100 {
				return fmt.Errorf("%d queries", o1.queries.Load()-n1)
			}
			return nil
		})
		f.etcd.StartAgain()
		_, d := flip(t)
		t.Logf("after an etcd restart, both proxies applied the next push within %v", d)
	})

	t.Run("Compaction", func(t *testing.T) {
		flip(t)
		rev, _ := flip(t)
		compact(t, f, rev)
		flip(t)
		// Down, several changes and a compaction while the watches are disconnected.
		f.etcd.Stop()
		f.etcd.StartAgain()
		f.pushDoc(t, f.doc("s0", ", max_execution_time: 1s"))
		last := f.pushDoc(t, f.doc("s1", ", max_execution_time: 2s"))
		compact(t, f, last)
		flip(t)
	})

	t.Run("StartFromLastKnownGood", func(t *testing.T) {
		want := valueOf(shard)
		live, err := f.push.Fetch(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		// p1 serves a new document before its last-known-good copy is written (a synced
		// file: slow under load), so the copy is taken once it holds the live revision.
		var data []byte
		eventually(t, 10*time.Second, "p1's last-known-good copy at the live revision", func() error {
			doc, err := (source.LastKnownGood{Path: lkg1}).Load()
			if err != nil || doc.Revision != live.Revision {
				return fmt.Errorf("revision %d, want %d (%v)", doc.Revision, live.Revision, err)
			}
			data, err = os.ReadFile(lkg1)
			return err
		})
		copyLKG := filepath.Join(t.TempDir(), "p3.yaml")
		if err := os.WriteFile(copyLKG, data, 0o600); err != nil {
			t.Fatal(err)
		}
		f.etcd.Stop()
		p3 := f.start(t, copyLKG)
		if !strings.Contains(p3.log.String(), "serving the last-known-good copy") {
			t.Errorf("start-up from the last-known-good copy not logged:\n%s", p3.log)
		}
		o3 := observe(t, p3)
		o3.waitFor(t, want, 10*time.Second)
		f.etcd.StartAgain()
		flip(t)
		o3.waitFor(t, valueOf(shard), 10*time.Second)
	})

	for _, p := range []*proxy{p1, p2} {
		if strings.Contains(p.log.String(), fleetBackendPass) || strings.Contains(p.log.String(), fleetPass) {
			t.Errorf("a proxy logged a password")
		}
	}
}

// compact compacts etcd's history up to rev through a client of its own.
func compact(t *testing.T, f *etcdFleet, rev int64) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{f.etcd.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Compact(t.Context(), rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact: %v", err)
	}
}
