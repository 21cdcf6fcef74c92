package integration

import (
	"database/sql"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
)

// TestXAFailover: a proxy crashes in the middle of multi-shard commits (the test-only
// SHARDPROXY_TEST_XA_CRASH, before and after the decision), then the primary of one of the
// shards dies and a new proxy starts. Shard s0 is a replication group in promote mode (ids
// with an even remainder), s1 a single server (odd ids). Whether s0 is a participant (its
// prepared branch lives on in the promoted replica, MariaDB replicates XA PREPARE) or the
// coordinator (its decision log lives on in the promoted replica, semi-sync made the commit
// durable), recovery finds what it needs on the shard's current primary: the decided write
// is on every shard, the undecided one on none, and no branch stays prepared.
func TestXAFailover(t *testing.T) {
	t.Run("Participant", func(t *testing.T) { testXAFailover(t, false) })
	t.Run("Coordinator", func(t *testing.T) { testXAFailover(t, true) })
}

// xaFailoverEnv starts the group (s0), the single server (s1) and their configuration.
func xaFailoverEnv(t *testing.T) (*replGroup, *mariadbtest.Server, *proxyConfig) {
	t.Helper()
	g := startReplGroup(t, false)
	single := mariadbtest.Start(t, mariadbtest.WithDatabases("fo"))
	single.Exec(t, "CREATE TABLE fo.t (id BIGINT PRIMARY KEY, writer INT NOT NULL)")
	cfg := &proxyConfig{
		Listen:  "127.0.0.1:0",
		Server:  map[string]any{"drain_timeout": "5s"},
		Users:   []userConfig{{Name: appUser, PasswordHash: hashPassword(t, "mysql_native_password", appPass)}},
		Schemes: []map[string]any{{"name": "by_id", "function": "mod", "slots": 2, "shards": []string{"s0", "s1"}}},
		Shards: []shardConfig{
			{Name: "s0", Primary: "b1", Replicas: []string{"b2", "b3"}, Database: "fo", Failover: map[string]any{"mode": "promote"}},
			{Name: "s1", Primary: "b4", Database: "fo"},
		},
		Databases: []databaseConfig{{Name: "fo", DefaultShard: "s0", Tables: []map[string]any{
			{"name": "t", "kind": "sharded", "key": "id", "scheme": "by_id"},
		}}},
	}
	for i, s := range g.srv {
		cfg.Backends = append(cfg.Backends, backendConfig{Name: fmt.Sprintf("b%d", i+1), Addr: s.Addr(), User: s.User, Password: s.Password,
			ReplicationAddr: g.alias[i] + ":3306", Pool: poolConfig{MaxOpen: 10}})
	}
	cfg.Backends = append(cfg.Backends, backendConfig{Name: "b4", Addr: single.Addr(), User: single.User, Password: single.Password,
		Pool: poolConfig{MaxOpen: 10}})
	return g, single, cfg
}

// xaBranches lists the XA branches prepared on s (gtrid and bqual, as XA RECOVER shows them).
func xaBranches(t testing.TB, s *mariadbtest.Server) []string {
	t.Helper()
	return xaBranchesOn(t, s.DB(t, ""))
}

func xaBranchesOn(t testing.TB, db *sql.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "XA RECOVER")
	if err != nil {
		t.Fatalf("XA RECOVER: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var format, gl, bl int
		var data string
		if err := rows.Scan(&format, &gl, &bl, &data); err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// crashProxyAt runs one two-row INSERT (ids a then b: a's shard coordinates) through a proxy
// told to exit at point of the commit, and waits for that exit.
func crashProxyAt(t *testing.T, cfg *proxyConfig, point string, a, b int64) {
	t.Helper()
	p := startProxyEnv(t, cfg, "SHARDPROXY_TEST_XA_CRASH="+point)
	db := openDB(t, p.dsn(appUser, appPass, "fo"))
	if _, err := db.ExecContext(t.Context(), "INSERT INTO t (id, writer) VALUES (?, 0), (?, 0)", a, b); err == nil {
		t.Fatalf("crash at %s: the INSERT succeeded", point)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the proxy did not exit at %s", point)
	}
	if ee, ok := p.err.(*exec.ExitError); !ok || ee.ExitCode() != 86 {
		t.Fatalf("the proxy exited with %v at %s, want the simulated crash's status 86\n%s", p.err, point, tail(p.log.String(), 4<<10))
	}
}

func hasID(t testing.TB, s *mariadbtest.Server, id int64) bool {
	t.Helper()
	return queryString(t, s.DB(t, ""), "SELECT COUNT(*) FROM fo.t WHERE id = ?", id) == "1"
}

// checkPrepareAcknowledged: on MariaDB 10.11 with semi-sync AFTER_SYNC, XA PREPARE returns
// only once a replica acknowledged it (Rpl_semi_sync_master_yes_tx counts it; no proxy runs
// yet, so nothing else writes).
func checkPrepareAcknowledged(t *testing.T, g *replGroup) {
	c, err := g.srv[0].DB(t, "").Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustExec(t, c, "XA START 'ack-probe'", "INSERT INTO fo.t VALUES (-7, -7)", "XA END 'ack-probe'")
	before := g.status(t, g.srv[0], "Rpl_semi_sync_master_yes_tx")
	mustExec(t, c, "XA PREPARE 'ack-probe'")
	after := g.status(t, g.srv[0], "Rpl_semi_sync_master_yes_tx")
	mustExec(t, c, "XA ROLLBACK 'ack-probe'")
	if before == after {
		t.Errorf("XA PREPARE returned without a semi-sync acknowledgement (Rpl_semi_sync_master_yes_tx %s before and after)", before)
	}
}

func testXAFailover(t *testing.T, groupCoordinates bool) {
	g, single, cfg := xaFailoverEnv(t)
	checkPrepareAcknowledged(t, g)
	// Even ids live on s0 (the group), odd ones on s1; the first row's shard coordinates.
	undecided, decided := [2]int64{11, 12}, [2]int64{21, 22}
	if groupCoordinates {
		undecided, decided = [2]int64{12, 11}, [2]int64{22, 21}
	}
	// The proxy that recovers runs all along: it knows the primary's semi-sync state (a
	// proxy that never saw a primary refuses to promote a replica in its place). It is
	// stopped (SIGSTOP) while the others crash and the primary dies, so that its periodic
	// recovery pass cannot resolve the branches before the failover.
	p := startProxy(t, cfg)
	eventually(t, 30*time.Second, "the proxy probed the primary", func() error {
		if !strings.Contains(p.log.String(), `backend=b1 state=up`) {
			return fmt.Errorf("b1 not up yet")
		}
		return nil
	})
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Signal(syscall.SIGCONT) })
	crashProxyAt(t, cfg, "prepared", undecided[0], undecided[1])
	crashProxyAt(t, cfg, "committed", decided[0], decided[1])

	participant, coordinator := g.srv[0], single
	if groupCoordinates {
		participant, coordinator = single, g.srv[0]
	}
	prepared := xaBranches(t, participant)
	if len(prepared) != 2 {
		t.Fatalf("prepared branches on the participant after the crashes: %q, want 2", prepared)
	}
	if xaBranches(t, coordinator) != nil {
		t.Fatalf("prepared branches on the coordinator: %q", xaBranches(t, coordinator))
	}
	// What the promoted replica must hold, it holds before the primary dies.
	g.sync(t, g.srv[0], g.srv[1:]...)
	for _, r := range g.srv[1:] {
		if groupCoordinates {
			if got := queryString(t, r.DB(t, ""), "SELECT COUNT(*) FROM shardproxy.xa_decisions WHERE decision = 'commit'"); got != "1" {
				t.Fatalf("replica %s holds %s commit decisions, want 1", r.Addr(), got)
			}
			if !hasID(t, r, decided[0]) {
				t.Fatalf("replica %s lacks the coordinator's committed row %d", r.Addr(), decided[0])
			}
		} else if got := xaBranches(t, r); !slices.Equal(got, prepared) {
			t.Fatalf("replica %s has prepared branches %q, the primary %q: XA PREPARE was not replicated", r.Addr(), got, prepared)
		}
	}

	docker(t, "kill", g.srv[0].ContainerID())
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	dbs := map[*mariadbtest.Server]*sql.DB{}
	for _, s := range append(slices.Clone(g.srv[1:]), single) {
		dbs[s] = s.DB(t, "")
	}
	var promoted *mariadbtest.Server
	eventually(t, 90*time.Second, "a replica promoted and every branch resolved", func() error {
		promoted = nil
		for _, r := range g.srv[1:] {
			if queryString(t, dbs[r], "SELECT @@read_only") == "0" {
				promoted = r
			}
		}
		if promoted == nil {
			return fmt.Errorf("no replica promoted yet")
		}
		left := append(xaBranchesOn(t, dbs[promoted]), xaBranchesOn(t, dbs[single])...)
		if len(left) > 0 {
			return fmt.Errorf("still prepared: %q", left)
		}
		return nil
	})
	for _, id := range decided {
		s := single
		if id%2 == 0 {
			s = promoted
		}
		if !hasID(t, s, id) {
			t.Errorf("decided row %d is missing on its shard", id)
		}
	}
	for _, id := range undecided {
		if hasID(t, promoted, id) || hasID(t, single, id) {
			t.Errorf("undecided row %d was committed", id)
		}
	}
	db := p.open(t, appUser, appPass, "fo")
	got := queryString(t, db, "SELECT COUNT(*) FROM t WHERE id IN (21, 22)") + "," + queryString(t, db, "SELECT COUNT(*) FROM t WHERE id IN (11, 12)")
	if got != "2,0" {
		t.Errorf("through the proxy after the failover: %s rows of the decided write and of the undecided one, want 2,0", got)
	}
	logs := p.log.String()
	// The branches were resolved through the promoted replica, not before the failover.
	resolved := grepLines(logs, `msg="XA recovery"`)
	if n := strings.Count(resolved, `msg="XA recovery"`); n != 2 {
		t.Errorf("the proxy resolved %d branches, want 2:\n%s", n, tail(logs, 8<<10))
	}
	if groupCoordinates {
		// Both decisions (the crashed proxy's commit, recovery's presumed abort) are on the
		// promoted replica: recovery read and wrote the decision log there.
		got := queryString(t, dbs[promoted], "SELECT GROUP_CONCAT(decision ORDER BY CAST(decision AS CHAR)) FROM shardproxy.xa_decisions")
		if got != "abort,commit" {
			t.Errorf("decisions on the promoted replica: %q, want abort,commit", got)
		}
	} else if want := fmt.Sprintf("backend=b%d", slices.Index(g.srv, promoted)+1); strings.Count(resolved, want) != 2 {
		t.Errorf("the group's branches were not both resolved on the promoted replica (%s):\n%s", want, resolved)
	}
	t.Logf("recovery on the promoted replica %s:\n%s", promoted.Addr(), grepLines(logs, "XA recovery"))
}
