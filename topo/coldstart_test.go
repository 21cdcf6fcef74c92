package topo

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/rules"
)

// TestPlanUnseenPrimary: a primary the proxy never reached (it started after the primary
// died) is replaced only when the shard declares semi-sync and every configured replica is
// reachable, semi-sync, replicating from that primary and has lost it too; otherwise the
// refusal names the reason.
func TestPlanUnseenPrimary(t *testing.T) {
	down := time.Unix(1000, 0)
	declared := func(c *rules.Config) {
		promoteConfig(c)
		c.Shards[0].Failover.SemiSyncDeclared = true
	}
	// b1's replication_addr is its addr, 127.0.0.1:1.
	replica := func(name string) *health.Status {
		return &health.Status{Backend: name, State: health.Up, Seen: down, ReadOnly: true,
			Settings: health.Settings{SemiSyncSlave: true},
			Replica:  &health.Replication{MasterHost: "127.0.0.1", MasterPort: 1, IORunning: "Connecting", SQLRunning: true}}
	}
	type edit = func(rs map[string]*health.Status, tp *Topology)
	for _, tc := range []struct {
		name   string
		config func(*rules.Config)
		edit   edit
		refuse string // "" = a plan
	}{
		{"Promotable", declared, nil, ""},
		{"IOThreadStopped", declared, func(rs map[string]*health.Status, _ *Topology) { rs["b2"].Replica.IORunning = "No" }, ""},
		{"NotDeclared", promoteConfig, nil, "does not declare failover.semi_sync_declared"},
		{"ReplicaDown", declared, func(rs map[string]*health.Status, _ *Topology) {
			rs["b3"].State, rs["b3"].Reason, rs["b3"].Err = health.Down, "connect: connection refused", errors.New("refused")
		}, "replica b3 is down (connect: connection refused): it may hold the only copy"},
		{"ReplicaNotProbedYet", declared, func(rs map[string]*health.Status, _ *Topology) { *rs["b3"] = health.Status{Backend: "b3"} },
			"replica b3 is unknown (not probed yet)"},
		{"ReplicaSuspect", declared, func(rs map[string]*health.Status, _ *Topology) {
			rs["b2"].State, rs["b2"].Err, rs["b2"].Reason = health.Suspect, errors.New("i/o timeout"), "i/o timeout"
		}, "replica b2 is suspect (i/o timeout)"},
		{"ReplicaOffline", declared, func(_ map[string]*health.Status, tp *Topology) { tp.fenced["b3"] = offlineReason },
			"replica b3 is fenced"},
		{"ReplicaNotSemiSync", declared, func(rs map[string]*health.Status, _ *Topology) { rs["b2"].Settings.SemiSyncSlave = false },
			"rpl_semi_sync_slave_enabled OFF"},
		{"ReplicaOfAnother", declared, func(rs map[string]*health.Status, _ *Topology) { rs["b3"].Replica.MasterPort = 2 },
			"replicates from 127.0.0.1:2, not from the primary's replication_addr 127.0.0.1:1"},
		{"ReplicaOfNobody", declared, func(rs map[string]*health.Status, _ *Topology) { rs["b3"].Replica = nil }, "replicates from nobody"},
		{"ReplicaStillConnected", declared, func(rs map[string]*health.Status, _ *Topology) { rs["b2"].Replica.IORunning = "Yes" },
			"still connected to the primary"},
		{"HostCaseInsensitive", func(c *rules.Config) {
			declared(c)
			c.Backends[0].ReplicationAddr = "DB1:3306"
		}, func(rs map[string]*health.Status, _ *Topology) {
			for _, r := range rs {
				r.Replica.MasterHost, r.Replica.MasterPort = "db1", 3306
			}
		}, ""},
		// The ordinary checks still apply after the replicas vouched.
		{"ReplicaStillReceives", declared, func(_ map[string]*health.Status, tp *Topology) {
			tp.activity["b2"] = activity{ioPos: "0-1-9", changed: down.Add(time.Millisecond)}
		}, "still receives"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTopo(t, snapshot(t, tc.config), time.Minute)
			rs := map[string]*health.Status{"b2": replica("b2"), "b3": replica("b3")}
			tp.mu.Lock()
			if tc.edit != nil {
				tc.edit(rs, tp)
			}
			tp.health["b1"] = health.Status{Backend: "b1", State: health.Down, Since: down, Reason: "connect: connection refused"}
			tp.health["b2"], tp.health["b3"] = *rs["b2"], *rs["b3"]
			tp.mu.Unlock()
			pl, err := tp.plan("b1", []string{"s1"})
			if tc.refuse == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !pl.unseen || strings.Join(pl.replicas, ",") != "b2,b3" {
					t.Errorf("plan %+v", pl)
				}
				return
			}
			if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), tc.refuse) {
				t.Fatalf("err %v, want a refusal with %q", err, tc.refuse)
			}
		})
	}
}

// TestObserveFirstSightIsNotActivity: the first position seen on a replica is not taken for
// replication activity after the primary went down (a proxy started after its primary died
// sees its replicas for the first time then); a later change is.
func TestObserveFirstSightIsNotActivity(t *testing.T) {
	tp := newTopo(t, snapshot(t, promoteConfig), time.Minute)
	at := time.Unix(2000, 0)
	see := func(pos string, when time.Time) {
		tp.Observe(health.Status{Backend: "b2", State: health.Up, Checked: when, Seen: when,
			Replica: &health.Replication{IOPos: pos}})
	}
	see("0-1-5", at)
	tp.mu.RLock()
	first := tp.activity["b2"]
	tp.mu.RUnlock()
	if !first.changed.IsZero() || first.ioPos != "0-1-5" {
		t.Errorf("after the first sight: %+v, want the position with no change time", first)
	}
	see("0-1-5", at.Add(time.Second))
	see("0-1-6", at.Add(2*time.Second))
	tp.mu.RLock()
	next := tp.activity["b2"]
	tp.mu.RUnlock()
	if !next.changed.Equal(at.Add(2*time.Second)) || next.ioPos != "0-1-6" {
		t.Errorf("after a change: %+v", next)
	}
}
