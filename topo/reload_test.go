package topo

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// recordingProber keeps the targets it was last given.
type recordingProber struct {
	mu      sync.Mutex
	targets []health.Target
}

func (p *recordingProber) SetTargets(ts []health.Target) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.targets = ts
}

func (p *recordingProber) names() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, t := range p.targets {
		out = append(out, t.Name)
	}
	return out
}

// bufferWait is how a statement for s1 fares while its primary b1 is suspect: how long it
// waited and its error.
func bufferWait(t *testing.T, tp *Topology) (time.Duration, error) {
	t.Helper()
	tp.Observe(health.Status{Backend: "b1", State: health.Suspect, Reason: "i/o timeout"})
	s1, _ := snapshot(t, nil).Shard("s1") // Acquire goes by the shard's name
	start := time.Now()
	_, err := tp.Acquire(t.Context(), s1, rules.RolePrimary)
	return time.Since(start), err
}

// TestReloadFailoverSettings: every failover and replica setting a reload changes applies to
// the running topology (none needs a restart): the mode, buffer_timeout and buffer_max, and
// the replicas (a removed one stops being probed, and what its probes said is forgotten).
func TestReloadFailoverSettings(t *testing.T) {
	noneMode := func(c *rules.Config) { c.Shards[0].Failover = rules.FailoverConfig{} }
	for _, tc := range []struct {
		name   string
		before func(*rules.Config)
		after  func(*rules.Config)
		check  func(t *testing.T, tp *Topology, pr *recordingProber)
	}{
		{
			name: "BufferTimeout", before: promoteConfig,
			after: func(c *rules.Config) {
				promoteConfig(c)
				c.Shards[0].Failover.BufferTimeout = rules.Duration(900 * time.Millisecond)
			},
			check: func(t *testing.T, tp *Topology, _ *recordingProber) {
				took, err := bufferWait(t, tp)
				if e, ok := sqlerr.As(err); !ok || e.Code != sqlerr.ErCantConnect || took < 900*time.Millisecond || !strings.Contains(e.Message, "900ms") {
					t.Errorf("after the reload: waited %v, %v; want the 900ms buffer timeout", took, err)
				}
			},
		},
		{
			name: "BufferMax", before: promoteConfig,
			after: func(c *rules.Config) { promoteConfig(c); c.Shards[0].Failover.BufferMax = 7 },
			check: func(t *testing.T, tp *Topology, _ *recordingProber) {
				tp.mu.Lock()
				tp.waiting["s1"] = 2 // the old bound (2) is full
				tp.mu.Unlock()
				_, err := bufferWait(t, tp)
				if e, ok := sqlerr.As(err); !ok || e.Code != sqlerr.ErCantConnect {
					t.Errorf("a third waiter under buffer_max 7: %v, want it buffered (1429 after the timeout)", err)
				}
			},
		},
		{
			// In mode none a statement for a suspect primary is not buffered; after the
			// reload to promote it is.
			name: "ModeNoneToPromote", before: noneMode, after: promoteConfig,
			check: func(t *testing.T, tp *Topology, _ *recordingProber) {
				if m := tp.Shards()[0].Mode; m != rules.FailoverPromote {
					t.Errorf("mode %s after the reload", m)
				}
				took, err := bufferWait(t, tp)
				if e, ok := sqlerr.As(err); !ok || e.Code != sqlerr.ErCantConnect || !strings.Contains(e.Message, "no writable primary") || took < 300*time.Millisecond {
					t.Errorf("after the reload to promote: waited %v, %v; want buffered for 300ms", took, err)
				}
			},
		},
		{
			name: "ReplicaRemoved", before: promoteConfig,
			after: func(c *rules.Config) { promoteConfig(c); c.Shards[0].Replicas = []string{"b2"} },
			check: func(t *testing.T, tp *Topology, pr *recordingProber) {
				if got := strings.Join(pr.names(), ","); got != "b1,b2" {
					t.Errorf("probed after the reload: %s, want b1,b2", got)
				}
				tp.Observe(health.Status{Backend: "b3", State: health.Up, Seen: time.Now()}) // a probe that ended late
				for _, b := range tp.Backends() {
					if b.Name == "b3" && b.Health.State != health.Unknown {
						t.Errorf("b3 is no longer probed but its health is %s", b.Health.State)
					}
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr := &recordingProber{}
			tp, err := New(snapshot(t, tc.before), Options{Logger: quietLog(), Prober: pr})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(tp.Close)
			for _, b := range []string{"b1", "b2", "b3"} {
				tp.Observe(health.Status{Backend: b, State: health.Up, Seen: time.Now(), ReadOnly: b != "b1"})
			}
			if err := tp.Apply(t.Context(), snapshot(t, tc.after)); err != nil {
				t.Fatal(err)
			}
			tc.check(t, tp, pr)
		})
	}
}
