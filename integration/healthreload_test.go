package integration

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
)

// TestHealthReload: the health and replica settings apply on a reload (SIGHUP with a file
// configuration) without a restart and without dropping a client connection: a shorter
// probe interval is visible on the replicas as more probes, and a lower lag bound moves
// reads off replicas that lag beyond it. Neither is reported as needing a restart.
func TestHealthReload(t *testing.T) {
	g := startReplGroup(t, false)
	g.srv[0].Exec(t, "INSERT INTO fo.t (id, writer) VALUES (1, 10)")
	cfg := failoverConfig(t, g, map[string]any{"mode": "promote"})
	cfg.Health = map[string]any{"interval": "1s"}
	cfg.Databases[0].ReadWriteSplit, cfg.Databases[0].MaxReplicaLag = true, "1h"
	path := filepath.Join(t.TempDir(), "shardproxy.yaml")
	write := func() {
		t.Helper()
		data, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write()
	p := launchProxy(t, "file "+path, nil, "--config", path)
	reload := func(what string) {
		t.Helper()
		before := strings.Count(p.log.String(), "configuration reloaded")
		write()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 15*time.Second, "the reload that "+what, func() bool {
			return strings.Count(p.log.String(), "configuration reloaded") > before
		})
	}

	// One client connection for the whole test: it must survive both reloads.
	db := p.open(t, appUser, appPass, "fo", "interpolateParams=true")
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var connID int64
	if err := conn.QueryRowContext(t.Context(), "SELECT CONNECTION_ID()").Scan(&connID); err != nil {
		t.Fatal(err)
	}
	served := func() int {
		t.Helper()
		var w, srv int
		if err := conn.QueryRowContext(t.Context(), readQ, 1).Scan(&w, &srv); err != nil {
			t.Fatalf("a read on the client connection: %v", err)
		}
		return srv
	}
	waitFor(t, 30*time.Second, "reads to reach a replica", func() bool { return served() != 1 })

	// Probe interval 1 s → 100 ms: the replica sees about ten times more probes (each runs
	// SHOW SLAVE STATUS once).
	probes := func() int {
		t.Helper()
		start := showSlaveStatusCount(t, g.srv[1])
		time.Sleep(3 * time.Second)
		return showSlaveStatusCount(t, g.srv[1]) - start
	}
	slow := probes()
	cfg.Health = map[string]any{"interval": "100ms"}
	reload("shortens the probe interval")
	fast := probes()
	t.Logf("probes of a replica in 3 s: %d at a 1 s interval, %d at 100 ms", slow, fast)
	if slow > 8 || fast < 12 || fast < 3*slow {
		t.Errorf("probes in 3 s: %d before the reload (1 s interval), %d after (100 ms): the new interval is not honoured", slow, fast)
	}

	// The replicas stop applying (their SQL threads wait for a table lock on the heartbeat
	// table, still running): their lag grows past 2 s. Under the 1 h bound reads stay on
	// them; after a reload to 2 s they go to the primary.
	for _, r := range g.srv[1:] {
		lock := lockHeartbeat(t, r)
		defer lock.Close()
	}
	time.Sleep(3 * time.Second)
	if srv := served(); srv == 1 {
		t.Fatalf("a read went to the primary under the 1 h lag bound with the replicas about 3 s behind")
	}
	cfg.Databases[0].MaxReplicaLag = "2s"
	reload("lowers the lag bound")
	waitFor(t, 10*time.Second, "reads to leave the lagging replicas", func() bool { return served() == 1 })

	var after int64
	if err := conn.QueryRowContext(t.Context(), "SELECT CONNECTION_ID()").Scan(&after); err != nil || after != connID {
		t.Errorf("the client connection changed across the reloads: id %d, then %d (%v)", connID, after, err)
	}
	logs := p.log.String()
	if !strings.Contains(logs, "health: probe timing changed") {
		t.Error("the checker did not log its new timing")
	}
	if s := grepLines(logs, "take effect only after a restart"); s != "" {
		t.Errorf("a health or replica setting was reported as needing a restart:\n%s", s)
	}
	if s := internalErrors(logs); s != "" {
		t.Errorf("internal errors:\n%s", s)
	}
}

// showSlaveStatusCount reads how many SHOW SLAVE STATUS s has run (the health probes').
func showSlaveStatusCount(t testing.TB, s *mariadbtest.Server) int {
	t.Helper()
	var name string
	var n int
	if err := s.DB(t, "").QueryRowContext(t.Context(), "SHOW GLOBAL STATUS LIKE 'Com_show_slave_status'").Scan(&name, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// lockHeartbeat holds a read lock on s's heartbeat table on a connection of its own, so
// that the replica's SQL thread waits (still running) and its lag grows; closing the
// connection releases it.
func lockHeartbeat(t *testing.T, s *mariadbtest.Server) *sql.Conn {
	t.Helper()
	waitFor(t, 15*time.Second, "the heartbeat table on "+s.Addr(), func() bool {
		var n int
		return s.DB(t, "").QueryRowContext(t.Context(), "SELECT COUNT(*) FROM shardproxy.heartbeat").Scan(&n) == nil && n > 0
	})
	c, err := s.DB(t, "").Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(t.Context(), "LOCK TABLES shardproxy.heartbeat READ"); err != nil {
		t.Fatal(fmt.Errorf("locking the heartbeat table: %w", err))
	}
	return c
}
