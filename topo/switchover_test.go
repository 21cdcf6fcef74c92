package topo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/rules"
)

// TestPlanSwitchover: the target is a named (or the first) replica that is up with both
// replication threads running, serving every shard of the primary; anything else is refused
// with ErrSwitchover before anything changes.
func TestPlanSwitchover(t *testing.T) {
	replica := func(name string) health.Status {
		return health.Status{Backend: name, State: health.Up, Seen: time.Unix(1000, 0), ReadOnly: true,
			Replica: &health.Replication{IORunning: "Yes", SQLRunning: true}}
	}
	for _, tc := range []struct {
		name, shard, to string
		edit            func(tp *Topology)
		want, refuse    string
	}{
		{name: "FirstReplica", shard: "s1", want: "b2"},
		{name: "Named", shard: "s1", to: "b3", want: "b3"},
		{name: "FirstNotReplicating", shard: "s1", want: "b3", edit: func(tp *Topology) {
			h := tp.health["b2"]
			h.Replica = &health.Replication{IORunning: "Connecting", SQLRunning: true}
			tp.health["b2"] = h
		}},
		{name: "NamedSQLStopped", shard: "s1", to: "b2", refuse: "b2 is not a replica", edit: func(tp *Topology) {
			h := tp.health["b2"]
			h.Replica = &health.Replication{IORunning: "Yes"}
			tp.health["b2"] = h
		}},
		{name: "NamedDown", shard: "s1", to: "b3", refuse: "b3 is not a replica", edit: func(tp *Topology) {
			h := tp.health["b3"]
			h.State = health.Down
			tp.health["b3"] = h
		}},
		{name: "NamedFenced", shard: "s1", to: "b3", refuse: "b3 is not a replica", edit: func(tp *Topology) { tp.fenced["b3"] = "offline: x" }},
		{name: "NotAReplica", shard: "s1", to: "b4", refuse: "b4 is not a replica"},
		{name: "UnknownShard", shard: "s9", refuse: "unknown shard"},
		{name: "NoPrimary", shard: "s1", refuse: "no writable primary", edit: func(tp *Topology) {
			st := *tp.shards["s1"]
			st.primary = ""
			tp.shards["s1"] = &st
		}},
		{name: "PrimaryFenced", shard: "s1", refuse: "is fenced", edit: func(tp *Topology) { tp.fenced["b1"] = "replaced by b2" }},
		{name: "NoReplicaUp", shard: "s1", refuse: "no replica that is up", edit: func(tp *Topology) {
			delete(tp.health, "b2")
			delete(tp.health, "b3")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTopo(t, snapshot(t, nil), time.Minute)
			tp.mu.Lock()
			tp.health["b2"], tp.health["b3"] = replica("b2"), replica("b3")
			if tc.edit != nil {
				tc.edit(tp)
			}
			tp.mu.Unlock()
			pl, err := tp.planSwitchover(tc.shard, tc.to)
			if tc.refuse != "" {
				if !errors.Is(err, ErrSwitchover) || !strings.Contains(err.Error(), tc.refuse) {
					t.Fatalf("err %v, want a refusal with %q", err, tc.refuse)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pl.old != "b1" || pl.choices[0] != tc.want || strings.Join(pl.shards, ",") != "s1" || strings.Join(pl.replicas, ",") != "b2,b3" {
				t.Errorf("plan %+v, want b1 → %s", pl, tc.want)
			}
		})
	}
}

// TestSwitchoverHold: while a switchover holds a shard (even one without failover), its
// statements wait, and run on the new primary once it is released; restore gives the shard
// back to its old primary.
func TestSwitchoverHold(t *testing.T) {
	tp := newTopo(t, snapshot(t, nil), time.Minute)
	sh, _ := snapshot(t, nil).Shard("s1")
	pl := plan{old: "b1", shards: []string{"s1"}, replicas: []string{"b3", "b1"}, fo: rules.Failover{}}
	tp.hold(pl)
	got := make(chan string, 1)
	go func() {
		m, err := tp.pick(context.Background(), sh, rules.RolePrimary)
		if err != nil {
			got <- err.Error()
			return
		}
		m.leave()
		got <- m.cfg.Name
	}()
	select {
	case g := <-got:
		t.Fatalf("a statement did not wait for the switchover: %s", g)
	case <-time.After(50 * time.Millisecond):
	}
	tp.release(pl, "b2")
	if g := <-got; g != "b2" {
		t.Fatalf("the held statement went to %s, want the new primary b2", g)
	}
	if s := tp.Shards()[0]; s.Primary != "b2" || strings.Join(s.Replicas, ",") != "b3,b1" || s.Mode != "" && s.Mode != rules.FailoverNone {
		t.Errorf("after release: %+v", s)
	}
	tp.restore(tp.hold(pl))
	if s := tp.Shards()[0]; s.Primary != "b2" {
		t.Errorf("after restore: primary %s, want b2", s.Primary)
	}
}
