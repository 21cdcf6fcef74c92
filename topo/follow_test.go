package topo

import (
	"fmt"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/rules"
)

func followConfig(c *rules.Config) {
	c.Shards[0].Failover = rules.FailoverConfig{Mode: "follow", BufferTimeout: rules.Duration(300 * time.Millisecond), BufferMax: 2}
}

// TestFollowMoves: a follow-mode shard moves to the one replica reporting read_only=0 once
// its primary is not writable, never on ambiguity, never to a fenced or unhealthy replica.
func TestFollowMoves(t *testing.T) {
	st := func(name string, s health.State, ro bool) health.Status {
		return health.Status{Backend: name, State: s, ReadOnly: ro, Seen: time.Unix(1, 0)}
	}
	for _, tc := range []struct {
		name       string
		b1, b2, b3 health.Status
		fenced     string
		want       string // "old→next shards" or ""
	}{
		{"PrimaryWritable", st("b1", health.Up, false), st("b2", health.Up, true), st("b3", health.Up, true), "", ""},
		{"PrimaryWritableReplicaToo", st("b1", health.Up, false), st("b2", health.Up, false), st("b3", health.Up, true), "", ""},
		{"PrimaryReadOnlyReplicaWritable", st("b1", health.Up, true), st("b2", health.Up, false), st("b3", health.Up, true), "", "b1→b2 [s1]"},
		{"PrimaryDownReplicaWritable", st("b1", health.Down, false), st("b2", health.Up, true), st("b3", health.Up, false), "", "b1→b3 [s1]"},
		{"PrimaryDownNoneWritable", st("b1", health.Down, false), st("b2", health.Up, true), st("b3", health.Up, true), "", ""},
		{"TwoWritable", st("b1", health.Down, false), st("b2", health.Up, false), st("b3", health.Up, false), "", ""},
		{"WritableButSuspect", st("b1", health.Down, false), st("b2", health.Suspect, false), st("b3", health.Up, true), "", ""},
		{"WritableButFenced", st("b1", health.Down, false), st("b2", health.Up, false), st("b3", health.Up, true), "b2", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTopo(t, snapshot(t, followConfig), time.Minute)
			tp.mu.Lock()
			tp.health["b1"], tp.health["b2"], tp.health["b3"] = tc.b1, tc.b2, tc.b3
			if tc.fenced != "" {
				tp.fenced[tc.fenced] = "test"
			}
			tp.mu.Unlock()
			got := ""
			for _, mv := range tp.followMoves() {
				got += fmt.Sprintf("%s→%s %v", mv.old, mv.next, mv.shards)
			}
			if got != tc.want {
				t.Errorf("moves %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFollow: following fences the old primary and makes the writable replica the primary.
func TestFollow(t *testing.T) {
	tp := newTopo(t, snapshot(t, followConfig), time.Minute)
	tp.follow(followMove{old: "b1", next: "b2", shards: []string{"s1"}})
	sh := tp.Shards()[0]
	if sh.Primary != "b2" || fmt.Sprint(sh.Replicas) != "[b3]" {
		t.Errorf("after following: %+v", sh)
	}
	tp.mu.RLock()
	defer tp.mu.RUnlock()
	if tp.fenced["b1"] == "" {
		t.Error("the old primary is not fenced")
	}
}

// TestHistory: a follow is recorded with its time, mode and duration, for the admin API.
func TestHistory(t *testing.T) {
	tp := newTopo(t, snapshot(t, followConfig), time.Minute)
	tp.follow(followMove{old: "b1", next: "b2", shards: []string{"s1"}})
	h := tp.History()
	if len(h) != 1 || h[0].Kind != EventPromoted || h[0].Mode != rules.FailoverFollow || h[0].NewPrimary != "b2" || h[0].At.IsZero() {
		t.Fatalf("history %+v", h)
	}
}
