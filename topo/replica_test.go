package topo

import (
	"errors"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/health"
)

func TestReplicaFit(t *testing.T) {
	now := time.Now()
	good := health.Status{State: health.Up, Seen: now, ReadOnly: true,
		Replica: &health.Replication{IORunning: "Yes", SQLRunning: true, Lag: 100 * time.Millisecond, LagKnown: true}}
	with := func(f func(*health.Status)) health.Status {
		s := good
		r := *good.Replica
		s.Replica = &r
		f(&s)
		return s
	}
	cases := []struct {
		name    string
		h       health.Status
		primary string
		want    bool
	}{
		{"fit", good, "db1", true},
		{"shard without primary", good, "", false},
		{"suspect", with(func(s *health.Status) { s.State = health.Suspect }), "db1", false},
		{"down", with(func(s *health.Status) { s.State = health.Down }), "db1", false},
		{"last probe failed", with(func(s *health.Status) { s.Err = errors.New("timeout") }), "db1", false},
		{"writable", with(func(s *health.Status) { s.ReadOnly = false }), "db1", false},
		{"not a replica", with(func(s *health.Status) { s.Replica = nil }), "db1", false},
		{"SQL thread stopped", with(func(s *health.Status) { s.Replica.SQLRunning = false }), "db1", false},
		{"IO thread reconnecting, applied in time", with(func(s *health.Status) { s.Replica.IORunning = "Connecting" }), "db1", true},
		{"lag unknown", with(func(s *health.Status) { s.Replica.LagKnown = false }), "db1", false},
		{"lag at the bound", with(func(s *health.Status) { s.Replica.Lag = 500 * time.Millisecond }), "db1", false},
		{"lag over the bound", with(func(s *health.Status) { s.Replica.Lag = 3 * time.Second }), "db1", false},
		{"never probed", health.Status{}, "db1", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := replicaFit(c.h, c.primary, 500*time.Millisecond); got != c.want {
				t.Errorf("replicaFit = %v, want %v", got, c.want)
			}
		})
	}
}
