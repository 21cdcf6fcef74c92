package health

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
)

// collector keeps the statuses a Checker publishes.
type collector struct {
	mu   sync.Mutex
	last map[string]Status
	down map[string]time.Time // first time each backend was published down
}

func newCollector() *collector {
	return &collector{last: map[string]Status{}, down: map[string]time.Time{}}
}

func (c *collector) publish(st Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last[st.Backend] = st
	if _, seen := c.down[st.Backend]; !seen && st.State == Down {
		c.down[st.Backend] = time.Now()
	}
}

func (c *collector) get(name string) (Status, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last[name], c.down[name]
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCheckerDetectsDeadAndHung: a refused connection and a server that accepts and never
// answers (a hung server) are both down within DownAfter probes of the default timeout.
func TestCheckerDetectsDeadAndHung(t *testing.T) {
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			nc, err := hung.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { _, _ = io.Copy(io.Discard, nc); _ = nc.Close() })
		}
	})
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refused.Addr().String()
	_ = refused.Close()

	col := newCollector()
	c := New(Options{Publish: col.publish})
	start := time.Now()
	c.SetTargets([]Target{
		{Name: "hung", Addr: hung.Addr().String(), User: "u", Password: "p"},
		{Name: "dead", Addr: refusedAddr, User: "u", Password: "p"},
	})
	// Interval 200ms, timeout 300ms, then 100ms between probes: 3 timeouts take at most
	// about 0.3 + 2 * (0.1 + 0.3) = 1.1 s after the first probe starts.
	waitUntil(t, 3*time.Second, "both backends down", func() bool {
		a, _ := col.get("hung")
		b, _ := col.get("dead")
		return a.State == Down && b.State == Down
	})
	c.Close()
	_ = hung.Close()
	wg.Wait()
	for name, want := range map[string]string{"hung": "timeout", "dead": "refused"} {
		st, at := col.get(name)
		if !strings.Contains(st.Reason, want) || st.Err == nil {
			t.Errorf("%s: reason %q (err %v), want one saying %q", name, st.Reason, st.Err, want)
		}
		if d := at.Sub(start); d > 1500*time.Millisecond {
			t.Errorf("%s: down after %v, want within 1.5 s", name, d)
		}
		t.Logf("%s: down after %v: %s", name, at.Sub(start), st.Reason)
	}
}

// TestCheckerMariaDB: a probe of a real MariaDB reads its settings (semi-sync on, with
// wait_no_slave OFF and no replica, as a demo shard after a promotion), the heartbeat is
// written on a primary (and not while it is read-only), and a stopped server goes down.
func TestCheckerMariaDB(t *testing.T) {
	srv := mariadbtest.Start(t, mariadbtest.WithServerArgs("--server-id=7", "--log-bin=mysql-bin", "--gtid-strict-mode=ON",
		"--rpl-semi-sync-master-wait-point=AFTER_SYNC", "--rpl-semi-sync-master-timeout=3600000",
		"--rpl-semi-sync-master-enabled=ON", "--rpl-semi-sync-master-wait-no-slave=OFF"))
	col := newCollector()
	c := New(Options{Publish: col.publish})
	defer c.Close()
	c.SetTargets([]Target{{Name: "b0", Addr: srv.Addr(), User: srv.User, Password: srv.Password, Heartbeat: true}})
	waitUntil(t, 10*time.Second, "b0 up", func() bool { st, _ := col.get("b0"); return st.State == Up })
	st, _ := col.get("b0")
	s := st.Settings
	if st.ServerID != 7 || st.ReadOnly || st.Replica != nil || !st.Primary() || !s.LogBin || !s.GTIDStrictMode ||
		!s.SemiSyncMaster || s.SemiSyncWaitPoint != "AFTER_SYNC" || s.SemiSyncTimeout != time.Hour ||
		s.SemiSyncWaitNoSlave || s.SemiSyncClients != 0 {
		t.Errorf("status %+v", st)
	}
	t.Logf("semi-sync primary without a replica: Rpl_semi_sync_master_status ON: %v, clients %d", s.SemiSyncActive, s.SemiSyncClients)
	db := srv.DB(t, "")
	waitUntil(t, 10*time.Second, "a heartbeat row", func() bool {
		var n int
		return db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM shardproxy.heartbeat WHERE server_id = 7").Scan(&n) == nil && n == 1
	})
	// A read-only server gets no heartbeat (the proxy's account bypasses read_only): after a
	// switchover made it read-only, nothing more is written to its binlog.
	db.SetMaxOpenConns(1) // SET GLOBAL and the reads on one session
	if _, err := db.ExecContext(t.Context(), "SET GLOBAL read_only = 1"); err != nil {
		t.Fatal(err)
	}
	binlogPos := func() string {
		var pos string
		if err := db.QueryRowContext(t.Context(), "SELECT @@gtid_binlog_pos").Scan(&pos); err != nil {
			t.Fatal(err)
		}
		return pos
	}
	before := binlogPos()
	time.Sleep(time.Second) // five heartbeat intervals
	if after := binlogPos(); after != before {
		t.Errorf("the heartbeat wrote on a read-only server: gtid_binlog_pos %s, then %s", before, after)
	}
	if _, err := db.ExecContext(t.Context(), "SET GLOBAL read_only = 0"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "heartbeats again once writable", func() bool { return binlogPos() != before })
	if err := srv.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "b0 down", func() bool { st, _ := col.get("b0"); return st.State == Down })
	if got, _ := c.Status("b0"); got.State != Down || got.Seen.IsZero() {
		t.Errorf("Status after stop: %+v", got)
	}
}
