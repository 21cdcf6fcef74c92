package integration

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
)

// replGroup is one shard's replication group in containers: a primary and two replicas on a
// Docker network of their own, GTID with gtid_strict_mode, semi-synchronous replication
// (AFTER_SYNC, one hour timeout: it never falls back to asynchronous in a test).
type replGroup struct {
	network string
	srv     []*mariadbtest.Server // srv[0] is the primary at the start
	alias   []string
}

// groupServerArgs are the mariadbd options the failover guarantees depend on (README).
// rpl_semi_sync_master_enabled is switched on on the primary once the replicas are attached:
// with it on at start, the entrypoint's init file would wait for a replica's acknowledgement.
func groupServerArgs(id int) []string {
	return []string{
		fmt.Sprintf("--server-id=%d", id), "--log-bin=mysql-bin", "--log-slave-updates=ON", "--binlog-format=ROW",
		"--gtid-strict-mode=ON", "--rpl-semi-sync-slave-enabled=ON", "--rpl-semi-sync-master-wait-point=AFTER_SYNC",
		"--rpl-semi-sync-master-timeout=3600000",
	}
}

func docker(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	// The cgroup freezer gives up ("unable to freeze") when a task does not stop in time,
	// as on this loaded machine; runc thaws the container again, so the pause is retried.
	for i := 0; err != nil && args[0] == "pause" && strings.Contains(string(out), "unable to freeze") && i < 10; i++ {
		time.Sleep(200 * time.Millisecond)
		out, err = exec.Command("docker", args...).CombinedOutput()
	}
	if err != nil {
		t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// startReplGroup starts the group; restartable keeps the primary's data and address across a
// docker kill and start (mariadbtest.Restartable).
func startReplGroup(t *testing.T, restartable bool) *replGroup {
	t.Helper()
	mariadbtest.RequireDocker(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	g := &replGroup{network: "shardproxy-fo-" + hex.EncodeToString(b[:])}
	docker(t, "network", "create", "--label", "shardproxy.test=1", g.network)
	t.Cleanup(func() { _ = exec.Command("docker", "network", "rm", g.network).Run() })
	for i := range 3 {
		alias := fmt.Sprintf("db%d", i+1)
		opts := []mariadbtest.Option{mariadbtest.WithNetwork(g.network, alias), mariadbtest.WithServerArgs(groupServerArgs(i + 1)...)}
		if i == 0 && restartable {
			opts = append(opts, mariadbtest.Restartable())
		}
		srv := mariadbtest.Start(t, opts...)
		id := srv.ContainerID()
		// Registered after Start's own cleanup, so it runs first: a paused or disconnected
		// container is given back before it is removed.
		t.Cleanup(func() {
			_ = exec.Command("docker", "unpause", id).Run()
			_ = exec.Command("docker", "network", "connect", "--alias", alias, g.network, id).Run()
		})
		g.srv, g.alias = append(g.srv, srv), append(g.alias, alias)
	}
	for _, r := range g.srv[1:] {
		r.Exec(t, "RESET MASTER", "SET GLOBAL gtid_slave_pos = ''",
			"CHANGE MASTER TO MASTER_HOST = 'db1', MASTER_PORT = 3306, MASTER_USER = 'root', MASTER_PASSWORD = '"+mariadbtest.RootPassword+
				"', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1",
			"SET GLOBAL read_only = 1", "START SLAVE")
	}
	// Only on the primary: on a replica (log_slave_updates, no replica of its own) MariaDB
	// 10.11 would make the applier wait for acknowledgements. The proxy switches it on when it
	// promotes a replica.
	g.srv[0].Exec(t, "SET GLOBAL rpl_semi_sync_master_enabled = ON")
	waitFor(t, 30*time.Second, "both replicas attached semi-synchronously", func() bool {
		return g.status(t, g.srv[0], "Rpl_semi_sync_master_clients") == "2"
	})
	g.srv[0].Exec(t, "CREATE DATABASE fo", "CREATE TABLE fo.t (id BIGINT PRIMARY KEY, writer INT NOT NULL)")
	g.sync(t, g.srv[0], g.srv[1:]...)
	return g
}

// status reads a global status variable of s.
func (g *replGroup) status(t testing.TB, s *mariadbtest.Server, name string) string {
	t.Helper()
	var v string
	if err := s.DB(t, "").QueryRowContext(t.Context(), "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = ?", strings.ToUpper(name)).Scan(&v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// sync waits until every replica applied what primary wrote so far.
func (g *replGroup) sync(t testing.TB, primary *mariadbtest.Server, replicas ...*mariadbtest.Server) {
	t.Helper()
	var pos string
	if err := primary.DB(t, "").QueryRowContext(t.Context(), "SELECT @@gtid_binlog_pos").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	for _, r := range replicas {
		var res int
		if err := r.DB(t, "").QueryRowContext(t.Context(), "SELECT MASTER_GTID_WAIT(?, 30)", pos).Scan(&res); err != nil || res != 0 {
			var io, sqlErr, slavePos string
			_ = r.DB(t, "").QueryRowContext(t.Context(), "SELECT @@gtid_slave_pos").Scan(&slavePos)
			rows, _ := r.DB(t, "").QueryContext(t.Context(), "SHOW SLAVE STATUS")
			if rows != nil {
				cols, _ := rows.Columns()
				vals := make([]any, len(cols))
				for i := range vals {
					vals[i] = new(sql.NullString)
				}
				for rows.Next() {
					_ = rows.Scan(vals...)
					for i, c := range cols {
						if c == "Last_IO_Error" || c == "Slave_IO_Running" || c == "Slave_SQL_Running" {
							io += c + "=" + vals[i].(*sql.NullString).String + " "
						}
						if c == "Last_SQL_Error" {
							sqlErr = vals[i].(*sql.NullString).String
						}
					}
				}
				rows.Close()
			}
			t.Fatalf("replica %s did not apply %s (it applied %s): %d %v; %s SQL error: %s", r.Addr(), pos, slavePos, res, err, io, sqlErr)
		}
	}
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// failoverProxy starts a proxy in front of g: shard s0 (database fo) in promote mode.
func failoverProxy(t *testing.T, g *replGroup) *proxy {
	t.Helper()
	return failoverProxyWith(t, g, map[string]any{"mode": "promote"})
}

// failoverProxyWith is failoverProxy with the shard's failover settings.
func failoverProxyWith(t *testing.T, g *replGroup, fo map[string]any) *proxy {
	t.Helper()
	return startProxy(t, failoverConfig(t, g, fo))
}

// failoverConfig is failoverProxyWith's configuration.
func failoverConfig(t *testing.T, g *replGroup, fo map[string]any) *proxyConfig {
	t.Helper()
	cfg := &proxyConfig{
		Listen: "127.0.0.1:0",
		Server: map[string]any{"drain_timeout": "5s"},
		Users:  []userConfig{{Name: appUser, PasswordHash: hashPassword(t, "mysql_native_password", appPass)}},
		Shards: []shardConfig{{Name: "s0", Primary: "b1", Replicas: []string{"b2", "b3"}, Database: "fo",
			Failover: fo}},
		Databases: []databaseConfig{{Name: "fo", DefaultShard: "s0"}},
	}
	cfg.Backends = g.backends(len(g.srv), 50)
	return cfg
}

// backends are the first n servers of g as backends b1..bn, each pool at most maxOpen
// connections.
func (g *replGroup) backends(n, maxOpen int) []backendConfig {
	var out []backendConfig
	for i, s := range g.srv[:n] {
		out = append(out, backendConfig{Name: fmt.Sprintf("b%d", i+1), Addr: s.Addr(), User: s.User, Password: s.Password,
			ReplicationAddr: g.alias[i] + ":3306", Pool: poolConfig{MaxOpen: maxOpen}})
	}
	return out
}

// TestFailover: for each way of losing a shard's primary, clients writing through the proxy
// as fast as they can see writes resume within 3 s, every acknowledged write is on the
// promoted replica, and the old primary gets no write once it is back.
func TestFailover(t *testing.T) {
	kill := func(t *testing.T, g *replGroup) { docker(t, "kill", g.srv[0].ContainerID()) }
	start := func(t *testing.T, g *replGroup) { docker(t, "start", g.srv[0].ContainerID()) }
	pause := func(t *testing.T, g *replGroup) { docker(t, "pause", g.srv[0].ContainerID()) }
	unpause := func(t *testing.T, g *replGroup) { docker(t, "unpause", g.srv[0].ContainerID()) }
	disconnect := func(t *testing.T, g *replGroup) {
		docker(t, "network", "disconnect", g.network, g.srv[0].ContainerID())
	}
	reconnect := func(t *testing.T, g *replGroup) {
		docker(t, "network", "connect", "--alias", g.alias[0], g.network, g.srv[0].ContainerID())
	}
	for _, tc := range []failoverCase{
		// The killed primary keeps its data directory and its port, and is started again.
		{name: "Kill", fault: kill, comeback: start, reachable: true, restartable: true},
		{name: "Pause", fault: pause, comeback: unpause, reachable: true},
		// Docker does not restore a container's published port when it rejoins the network,
		// so the proxy cannot reach it again (nor make it read-only); docker exec still can.
		{name: "Disconnect", fault: disconnect, comeback: reconnect},
	} {
		t.Run(tc.name, func(t *testing.T) { testFailover(t, tc) })
	}
}

// failoverCase is one way of losing a primary.
type failoverCase struct {
	name     string
	fault    func(t *testing.T, g *replGroup)
	comeback func(t *testing.T, g *replGroup) // nil: the old primary does not come back
	// reachable: the proxy reaches the old primary again after the comeback.
	reachable bool
	// restartable: the primary's container keeps its data and port across a restart.
	restartable bool
}

// countInside counts fo.t's rows on s from inside its container.
func countInside(t testing.TB, s *mariadbtest.Server) string {
	t.Helper()
	out, err := exec.Command("docker", "exec", s.ContainerID(), "mariadb", "-uroot", "-p"+mariadbtest.RootPassword, "-N", "-e", "SELECT COUNT(*) FROM fo.t").CombinedOutput()
	if err != nil {
		t.Fatalf("counting rows inside %s: %v: %s", s.ContainerID(), err, out)
	}
	return strings.TrimSpace(string(out))
}

func testFailover(t *testing.T, tc failoverCase) {
	name, fault, comeback := tc.name, tc.fault, tc.comeback
	g := startReplGroup(t, tc.restartable)
	p := failoverProxy(t, g)
	probe := p.open(t, appUser, appPass, "fo")
	waitWritesThrough(t, probe, 10*time.Second, "the proxy to write through to the primary")

	ctx, cancel := context.WithCancel(t.Context())
	done := startWriteLoad(ctx, t, p, 8, 1_000_000_000)
	time.Sleep(time.Second) // steady load before the fault
	faultAt := time.Now()
	fault(t, g)
	// Keep writing until writes have resumed for a while (or long enough to fail).
	time.Sleep(6 * time.Second)
	cancel()
	res := <-done
	gap := longestGap(res.acks, faultAt)
	var before, after int
	for _, a := range res.acks {
		if a.at.Before(faultAt) {
			before++
		} else {
			after++
		}
	}
	t.Logf("FAILOVER fault=%s gap=%.3fs acked_before=%d acked_after=%d failed=%d", strings.ToLower(name), gap.Seconds(), before, after, res.failed)
	for _, l := range strings.Split(p.log.String(), "\n") {
		if strings.Contains(l, "topo:") || strings.Contains(l, "backend=b1 state=") {
			t.Log(l)
		}
	}
	if before == 0 || after == 0 {
		t.Fatalf("acknowledged %d writes before the fault and %d after: the load did not run through the failover", before, after)
	}
	if gap >= 3*time.Second {
		t.Errorf("longest gap between acknowledged writes: %v, want < 3s", gap)
	}

	// The promoted replica holds every acknowledged write.
	var serverID int
	if err := probe.QueryRowContext(t.Context(), "SELECT @@server_id").Scan(&serverID); err != nil {
		t.Fatalf("the proxy after failover: %v", err)
	}
	if serverID != 2 && serverID != 3 {
		t.Fatalf("the proxy writes to server_id %d after failover, want a promoted replica (2 or 3)", serverID)
	}
	promoted := g.srv[serverID-1]
	if missing := missingOn(t, promoted, res.acks); missing > 0 {
		t.Errorf("%d of %d acknowledged writes are missing on the promoted replica (server_id %d)", missing, len(res.acks), serverID)
	}
	other := g.srv[5-serverID-1] // the replica that was not promoted follows the new primary
	g.sync(t, promoted, other)

	if comeback != nil {
		checkComeback(t, g, tc, probe, promoted)
	}
}

// TestFailoverRefusedAfterAsyncFallback: a primary whose semi-sync fell back to asynchronous
// replication may have acknowledged writes no replica received: when it dies, the proxy
// refuses to promote (and says why), statements fail after the buffer timeout, and no
// replica is made writable.
func TestFailoverRefusedAfterAsyncFallback(t *testing.T) {
	g := startReplGroup(t, false)
	p := failoverProxyWith(t, g, map[string]any{"mode": "promote", "buffer_timeout": "1s"})
	db := p.open(t, appUser, appPass, "fo", "interpolateParams=true")
	waitFor(t, 10*time.Second, "the proxy to write through to the primary", func() bool {
		_, err := db.ExecContext(t.Context(), "INSERT INTO t (id, writer) VALUES (1, 0)")
		return err == nil
	})
	// The replicas stop receiving; the next commit waits 200 ms for an acknowledgement, then
	// the primary falls back to asynchronous replication and acknowledges it anyway.
	g.srv[0].Exec(t, "SET GLOBAL rpl_semi_sync_master_timeout = 200")
	for _, r := range g.srv[1:] {
		r.Exec(t, "STOP SLAVE IO_THREAD")
	}
	if _, err := db.ExecContext(t.Context(), "INSERT INTO t (id, writer) VALUES (2, 0)"); err != nil {
		t.Fatalf("a write acknowledged asynchronously: %v", err)
	}
	if st := g.status(t, g.srv[0], "Rpl_semi_sync_master_status"); st != "OFF" {
		t.Fatalf("Rpl_semi_sync_master_status %s, want OFF", st)
	}
	waitFor(t, 10*time.Second, "the proxy to warn that semi-sync fell back", func() bool {
		return strings.Contains(p.log.String(), "fell back to asynchronous")
	})
	docker(t, "kill", g.srv[0].ContainerID())
	waitFor(t, 10*time.Second, "the proxy to refuse the promotion", func() bool {
		return strings.Contains(p.log.String(), "NOT failed over automatically") &&
			strings.Contains(p.log.String(), "had fallen back to asynchronous")
	})
	start := time.Now()
	_, err := db.ExecContext(t.Context(), "INSERT INTO t (id, writer) VALUES (3, 0)")
	if err == nil || !strings.Contains(err.Error(), "1429") {
		t.Errorf("a write with no primary: %v, want 1429 after the buffer timeout", err)
	}
	if el := time.Since(start); el < time.Second || el > 5*time.Second {
		t.Errorf("the write failed after %v, want the 1 s buffer timeout", el)
	}
	for _, r := range g.srv[1:] {
		var ro int
		if err := r.DB(t, "").QueryRowContext(t.Context(), "SELECT @@read_only").Scan(&ro); err != nil || ro != 1 {
			t.Errorf("replica %s: read_only %d (%v), want 1: nothing was promoted", r.Addr(), ro, err)
		}
	}
}

// checkComeback brings the old primary back and checks that it receives no write: the
// proxy makes it read-only when it reaches it, and writes go to the promoted replica.
func checkComeback(t *testing.T, g *replGroup, tc failoverCase, probe *sql.DB, promoted *mariadbtest.Server) {
	tc.comeback(t, g)
	old := g.srv[0]
	if tc.reachable {
		oldDB := old.DB(t, "")
		waitFor(t, time.Minute, "the proxy to make the old primary read-only when it came back", func() bool {
			var ro int
			err := oldDB.QueryRowContext(t.Context(), "SELECT @@read_only").Scan(&ro)
			return err == nil && ro == 1
		})
	}
	oldRows := countInside(t, old)
	for i := range 100 {
		if _, err := probe.ExecContext(t.Context(), "INSERT INTO t (id, writer) VALUES (?, -2)", 2_000_000_000+i); err != nil {
			t.Fatalf("write after the old primary came back: %v", err)
		}
	}
	if n := countInside(t, old); n != oldRows {
		t.Errorf("the fenced old primary went from %s to %s rows after it came back", oldRows, n)
	}
	if got := ids(t, promoted); !got[2_000_000_099] {
		t.Error("the writes after the comeback are not on the promoted primary")
	}
}
