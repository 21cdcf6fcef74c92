package topo

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shardproxy/shardproxy/pool"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// config is a valid configuration of backends b1..b4 and one shard s1 (primary b1,
// replicas b2 and b3), edited by each case.
func config(edit func(*rules.Config)) *rules.Config {
	c := &rules.Config{
		Users: []rules.UserConfig{{Name: "app", PasswordHash: "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9"}},
		Backends: []rules.BackendConfig{
			{Name: "b1", Addr: "127.0.0.1:1", User: "proxy", Password: "pw"},
			{Name: "b2", Addr: "127.0.0.1:2", User: "proxy", Password: "pw"},
			{Name: "b3", Addr: "127.0.0.1:3", User: "proxy", Password: "pw"},
			{Name: "b4", Addr: "127.0.0.1:4", User: "proxy", Password: "pw"},
		},
		Shards:    []rules.ShardConfig{{Name: "s1", Primary: "b1", Replicas: []string{"b2", "b3"}, Database: "d1"}},
		Databases: []rules.DatabaseConfig{{Name: "shop", DefaultShard: "s1"}},
	}
	if edit != nil {
		edit(c)
	}
	return c
}

func snapshot(t *testing.T, edit func(*rules.Config)) *rules.Snapshot {
	t.Helper()
	s, err := rules.Build(config(edit))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTopo(t *testing.T, snap *rules.Snapshot, drain time.Duration) *Topology {
	t.Helper()
	tp, err := New(snap, Options{Logger: quietLog(), DrainTimeout: drain})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tp.Close)
	return tp
}

// TestApply: a reload keeps the pools of unchanged backends, replaces changed ones, drains
// removed ones, and keeps a shard's runtime roles while its configured members are the same.
func TestApply(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edit     func(*rules.Config)
		kept     []string // members that must be the very same (pool untouched)
		replaced []string // members with a new pool; the old one is drained
		removed  []string
		primary  string // s1's primary after the reload
		replicas []string
	}{
		{"Unchanged", nil, []string{"b1", "b2", "b3", "b4"}, nil, nil, "b2", []string{"b3"}},
		{"PoolSettingChanged", func(c *rules.Config) { c.Backends[3].Pool.MaxOpen = 7 },
			[]string{"b1", "b2", "b3"}, []string{"b4"}, nil, "b2", []string{"b3"}},
		{"PasswordChanged", func(c *rules.Config) { c.Backends[0].Password = "new" },
			[]string{"b2", "b3", "b4"}, []string{"b1"}, nil, "b2", []string{"b3"}},
		{"BackendRemoved", func(c *rules.Config) { c.Backends = c.Backends[:3] },
			[]string{"b1", "b2", "b3"}, nil, []string{"b4"}, "b2", []string{"b3"}},
		{"ShardMembersChanged", func(c *rules.Config) {
			c.Shards[0] = rules.ShardConfig{Name: "s1", Primary: "b2", Replicas: []string{"b3"}, Database: "d1"}
		},
			[]string{"b1", "b2", "b3", "b4"}, nil, nil, "b2", []string{"b3"}},
		{"ShardMovedToOtherServers", func(c *rules.Config) { c.Shards[0] = rules.ShardConfig{Name: "s1", Primary: "b4", Database: "d1"} },
			[]string{"b1", "b2", "b3", "b4"}, nil, nil, "b4", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTopo(t, snapshot(t, nil), time.Minute)
			before := maps(tp)
			// A promotion happened at runtime: b2 is primary, b1 fenced out of the shard.
			tp.mu.Lock()
			tp.shards["s1"] = &shardState{name: "s1", database: "d1", primary: "b2", replicas: []string{"b3"}, config: tp.shards["s1"].config}
			tp.mu.Unlock()
			v := tp.Version()
			if err := tp.Apply(t.Context(), snapshot(t, tc.edit)); err != nil {
				t.Fatal(err)
			}
			if tp.Version() <= v {
				t.Errorf("version %d after Apply, was %d", tp.Version(), v)
			}
			after := maps(tp)
			for _, n := range tc.kept {
				if before[n] != after[n] {
					t.Errorf("backend %s: pool replaced, want kept", n)
				}
			}
			for _, n := range append(slices.Clone(tc.replaced), tc.removed...) {
				if before[n] == after[n] {
					t.Errorf("backend %s: pool kept, want replaced or removed", n)
				}
				waitClosed(t, before[n])
			}
			for _, n := range tc.removed {
				if after[n] != nil {
					t.Errorf("backend %s still present", n)
				}
			}
			sh := tp.Shards()
			if len(sh) != 1 || sh[0].Primary != tc.primary || !slices.Equal(sh[0].Replicas, tc.replicas) {
				t.Errorf("shards %+v; want s1 primary %s replicas %v", sh, tc.primary, tc.replicas)
			}
		})
	}
}

func maps(tp *Topology) map[string]*member {
	tp.mu.RLock()
	defer tp.mu.RUnlock()
	out := map[string]*member{}
	for k, v := range tp.backends {
		out[k] = v
	}
	return out
}

// waitClosed waits until m's drain closed its pool (Acquire then fails with pool.ErrClosed).
func waitClosed(t *testing.T, m *member) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := m.pool.Acquire(t.Context()); err != nil && errors.Is(err, pool.ErrClosed) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool of %s not closed", m.cfg.Name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDrainWaitsForInFlight: the pool of a removed backend stays open while a connection is
// in use and closes when it comes back; a second one closes at the drain timeout.
func TestDrainWaitsForInFlight(t *testing.T) {
	tp := newTopo(t, snapshot(t, nil), 300*time.Millisecond)
	m := maps(tp)["b4"]
	if !m.enter() { // a statement in flight on b4
		t.Fatal("enter refused")
	}
	if err := tp.Apply(t.Context(), snapshot(t, func(c *rules.Config) { c.Backends = c.Backends[:3] })); err != nil {
		t.Fatal(err)
	}
	if m.enter() {
		t.Fatal("a draining backend handed out a connection")
	}
	select {
	case <-m.idle:
		t.Fatal("drained while a connection is in use")
	default:
	}
	m.leave()
	<-m.idle
	waitClosed(t, m)

	// Timeout: the connection is never given back; the pool closes anyway.
	tp2 := newTopo(t, snapshot(t, nil), 100*time.Millisecond)
	m2 := maps(tp2)["b4"]
	m2.enter()
	start := time.Now()
	if err := tp2.Apply(t.Context(), snapshot(t, func(c *rules.Config) { c.Backends = c.Backends[:3] })); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, m2)
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Errorf("closed after %v, before the drain timeout", el)
	}
}

// TestAcquireErrors: shards the topology does not know, or without a primary, get a clear
// server error ErCantConnect (1429), not a panic or a hang.
func TestAcquireErrors(t *testing.T) {
	snap := snapshot(t, nil)
	tp := newTopo(t, snap, time.Minute)
	other := snapshot(t, func(c *rules.Config) {
		c.Shards = append(c.Shards, rules.ShardConfig{Name: "s9", Primary: "b4", Database: "d9"})
	})
	s9, _ := other.Shard("s9")
	s1, _ := snap.Shard("s1")
	tp.mu.Lock()
	tp.shards["s1"] = &shardState{name: "s1", database: "d1", replicas: []string{"b3"}}
	tp.mu.Unlock()
	for _, tc := range []struct {
		name  string
		shard *rules.Shard
		role  rules.Role
	}{
		{"UnknownShard", s9, rules.RolePrimary},
		{"NoPrimary", s1, rules.RolePrimary},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tp.Acquire(t.Context(), tc.shard, tc.role)
			e, ok := sqlerr.As(err)
			if !ok || e.Code != sqlerr.ErCantConnect {
				t.Fatalf("err %v, want ErCantConnect", err)
			}
		})
	}
}

// TestCloseIdempotent: Close twice, and Apply after Close fails.
func TestCloseIdempotent(t *testing.T) {
	tp, err := New(snapshot(t, nil), Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	tp.Close()
	tp.Close()
	if err := tp.Apply(t.Context(), snapshot(t, nil)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close: %v", err)
	}
}
