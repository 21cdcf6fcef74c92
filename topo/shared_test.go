package topo

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/rules"
)

// fakeCoord is a Coordinator that records what is published; refuse, when set, is returned
// by Publish instead.
type fakeCoord struct {
	mu        sync.Mutex
	epoch     int64
	leading   bool
	refuse    error
	published []Shared
	ch        chan Shared
	// stall, when set, holds the next Publish (before it looks at anything) until it is
	// closed; entered says that it is held.
	stall, entered chan struct{}
}

func newFakeCoord(leading bool) *fakeCoord {
	return &fakeCoord{epoch: 7, leading: leading, ch: make(chan Shared, 16)}
}

func (f *fakeCoord) Leading() (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.epoch, f.leading
}

func (f *fakeCoord) Publish(_ context.Context, epoch int64, next Shared) (Shared, error) {
	f.mu.Lock()
	stall := f.stall
	f.stall = nil
	f.mu.Unlock()
	if stall != nil {
		close(f.entered)
		<-stall
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return Shared{}, f.refuse
	}
	if n := len(f.published); n > 0 && next.Version != f.published[n-1].Version+1 {
		return Shared{}, ErrSharedConflict
	}
	next.Epoch, next.Leader = epoch, "fake"
	f.published = append(f.published, next)
	f.ch <- next
	return next, nil
}

func (f *fakeCoord) WaitApplied(context.Context, uint64) error { return nil }

func (f *fakeCoord) Confirm(_ context.Context, epoch int64) error {
	if e, ok := f.Leading(); !ok || e != epoch {
		return ErrNotLeader
	}
	return nil
}

func newSharedTopo(t *testing.T, c Coordinator) *Topology {
	t.Helper()
	tp, err := New(snapshot(t, promoteConfig), Options{Logger: quietLog(), DrainTimeout: time.Minute, Coordinator: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tp.Close)
	return tp
}

func shardOf(tp *Topology, name string) ShardInfo {
	for _, s := range tp.Shards() {
		if s.Name == name {
			return s
		}
	}
	return ShardInfo{}
}

// TestApplyShared: a proxy takes the roles and fences the shared topology gives, in version
// order, and keeps its roles where the shared topology names backends its configuration does
// not give the shard.
func TestApplyShared(t *testing.T) {
	promoted := Shared{Version: 3, Epoch: 5, Leader: "p1",
		Shards: map[string]SharedShard{"s1": {Primary: "b2", Replicas: []string{"b3"}, Change: "promoted b2 in place of b1"}},
		Fenced: map[string]string{"b1": "replaced by b2"}}
	for _, tc := range []struct {
		name     string
		before   *Shared // applied first
		apply    Shared
		applied  bool
		primary  string
		replicas []string
		fenced   string // b1's fence afterwards
	}{
		{name: "Promotion", apply: promoted, applied: true, primary: "b2", replicas: []string{"b3"}, fenced: "replaced by b2"},
		{name: "OlderIgnored", before: &promoted, apply: Shared{Version: 2, Shards: map[string]SharedShard{"s1": {Primary: "b1", Replicas: []string{"b2", "b3"}}}},
			primary: "b2", replicas: []string{"b3"}, fenced: "replaced by b2"},
		{name: "SameVersionIgnored", before: &promoted, apply: Shared{Version: 3, Shards: map[string]SharedShard{"s1": {Primary: "b3"}}},
			primary: "b2", replicas: []string{"b3"}, fenced: "replaced by b2"},
		{name: "NotAMember", apply: Shared{Version: 1, Shards: map[string]SharedShard{"s1": {Primary: "b4", Replicas: []string{"b2"}}}},
			applied: true, primary: "b1", replicas: []string{"b2", "b3"}},
		{name: "UnknownShardAndBackend", apply: Shared{Version: 1, Shards: map[string]SharedShard{"s9": {Primary: "b1"}}, Fenced: map[string]string{"b9": "x"}},
			applied: true, primary: "b1", replicas: []string{"b2", "b3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newSharedTopo(t, newFakeCoord(false))
			if tc.before != nil && !tp.ApplyShared(*tc.before) {
				t.Fatal("the first version was not applied")
			}
			v0 := tp.Version()
			if got := tp.ApplyShared(tc.apply); got != tc.applied {
				t.Fatalf("ApplyShared = %v, want %v", got, tc.applied)
			}
			if tc.applied && tp.Version() == v0 {
				t.Error("the topology version did not change")
			}
			sh := shardOf(tp, "s1")
			if sh.Primary != tc.primary || !slices.Equal(sh.Replicas, tc.replicas) {
				t.Errorf("s1: primary %q replicas %v, want %q %v", sh.Primary, sh.Replicas, tc.primary, tc.replicas)
			}
			tp.mu.RLock()
			fenced := tp.fenced["b1"]
			tp.mu.RUnlock()
			if fenced != tc.fenced {
				t.Errorf("b1 fenced %q, want %q", fenced, tc.fenced)
			}
		})
	}
}

// TestDecide: with a coordinator, a change of roles is published (this proxy's view plus the
// change) and applied only once published; a refused publication (a deposed leader) changes
// nothing here, and a proxy that does not lead publishes nothing.
func TestDecide(t *testing.T) {
	change := map[string]SharedShard{"s1": {Primary: "b2", Replicas: []string{"b3"}}}
	fence := map[string]string{"b1": "replaced by b2"}
	for _, tc := range []struct {
		name    string
		leading bool
		refuse  error
		wantErr error
		primary string
	}{
		{name: "Leader", leading: true, primary: "b2"},
		{name: "DeposedLeader", leading: true, refuse: ErrNotLeader, wantErr: ErrNotLeader, primary: "b1"},
		{name: "Conflict", leading: true, refuse: ErrSharedConflict, wantErr: ErrSharedConflict, primary: "b1"},
		{name: "NotLeader", wantErr: ErrNotLeader, primary: "b1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := newFakeCoord(false)
			fc.refuse = tc.refuse
			tp := newSharedTopo(t, fc)
			fc.mu.Lock()
			fc.leading = tc.leading
			fc.mu.Unlock()
			// The controller, woken at the same time, publishes its own view (syncShared)
			// before or after the decision: the two are serialised, so neither conflicts.
			tp.LeadershipChanged()
			ranLocal := false
			err := tp.decide(t.Context(), change, fence, func() { ranLocal = true })
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("decide: %v, want %v", err, tc.wantErr)
			}
			if ranLocal != (tc.wantErr == nil) {
				t.Errorf("the local change ran: %v", ranLocal)
			}
			if sh := shardOf(tp, "s1"); sh.Primary != tc.primary {
				t.Errorf("s1's primary is %q, want %q", sh.Primary, tc.primary)
			}
			fc.mu.Lock()
			defer fc.mu.Unlock()
			if tc.wantErr != nil {
				return
			}
			if len(fc.published) == 0 {
				t.Fatal("nothing was published")
			}
			p := fc.published[len(fc.published)-1]
			if p.Shards["s1"].Primary != "b2" || p.Fenced["b1"] != "replaced by b2" || p.Epoch != 7 {
				t.Errorf("published %+v", p)
			}
		})
	}
}

// TestDecideWhileSyncing: a decision taken while the controller is publishing this proxy's
// view waits for that publication and builds on it, rather than conflicting with it.
func TestDecideWhileSyncing(t *testing.T) {
	fc := newFakeCoord(false)
	tp := newSharedTopo(t, fc)
	fc.mu.Lock()
	fc.leading = true
	fc.stall, fc.entered = make(chan struct{}), make(chan struct{})
	stall := fc.stall
	fc.mu.Unlock()
	tp.LeadershipChanged() // the controller publishes its view, and is held there
	select {
	case <-fc.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the controller did not publish its view")
	}
	done := make(chan error, 1)
	go func() {
		done <- tp.decide(t.Context(), map[string]SharedShard{"s1": {Primary: "b2", Replicas: []string{"b3"}}},
			map[string]string{"b1": "replaced by b2"}, func() {})
	}()
	time.Sleep(50 * time.Millisecond) // the decision reaches the publication lock
	close(stall)
	if err := <-done; err != nil {
		t.Fatalf("decide: %v", err)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.published) != 2 || fc.published[0].Version != 1 || fc.published[1].Version != 2 ||
		fc.published[1].Shards["s1"].Primary != "b2" {
		t.Errorf("published %+v", fc.published)
	}
	if sh := shardOf(tp, "s1"); sh.Primary != "b2" {
		t.Errorf("s1's primary is %q, want b2", sh.Primary)
	}
}

// TestLeaderPublishesItsView: a proxy that wins the leadership with nothing shared yet
// publishes its topology (version 1); one that does not lead publishes nothing.
func TestLeaderPublishesItsView(t *testing.T) {
	fc := newFakeCoord(true)
	tp := newSharedTopo(t, fc)
	tp.LeadershipChanged()
	select {
	case p := <-fc.ch:
		if p.Version != 1 || p.Shards["s1"].Primary != "b1" || !slices.Equal(p.Shards["s1"].Replicas, []string{"b2", "b3"}) {
			t.Errorf("published %+v", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the leader published nothing")
	}
	if tp.SharedVersion() != 1 {
		t.Errorf("SharedVersion = %d, want 1", tp.SharedVersion())
	}
	// A reload that changes the shard's members is published too.
	if err := tp.Apply(t.Context(), snapshot(t, func(c *rules.Config) {
		promoteConfig(c)
		c.Shards[0].Replicas = []string{"b2", "b3", "b4"}
	})); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-fc.ch:
		if p.Version != 2 || !slices.Equal(p.Shards["s1"].Replicas, []string{"b2", "b3", "b4"}) {
			t.Errorf("published after the reload: %+v", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reload was not published")
	}
}

// TestSharedHold: a switchover's hold published by the leader makes another proxy's
// statements for the shard wait (promote-mode buffering, whatever the shard's mode); the
// release gives the shard its primary and its failover settings back. A hold its leader
// left unfinished is ended by the next leader: the shard's one writable member is primary.
func TestSharedHold(t *testing.T) {
	fc := newFakeCoord(false)
	tp, err := New(snapshot(t, nil), Options{Logger: quietLog(), DrainTimeout: time.Minute, Coordinator: fc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tp.Close)
	tp.mu.RLock()
	configured := tp.shards["s1"].fo
	tp.mu.RUnlock()
	held := Shared{Version: 1, Shards: map[string]SharedShard{"s1": {Replicas: []string{"b2", "b3"}, Held: true, From: "b1"}}}
	tp.ApplyShared(held)
	tp.mu.RLock()
	st := *tp.shards["s1"]
	tp.mu.RUnlock()
	if st.primary != "" || st.fo.Mode != rules.FailoverPromote || st.fo.BufferTimeout <= 0 {
		t.Fatalf("held shard: primary %q failover %+v", st.primary, st.fo)
	}
	tp.ApplyShared(Shared{Version: 2, Shards: map[string]SharedShard{"s1": {Primary: "b2", Replicas: []string{"b3", "b1"}}}})
	tp.mu.RLock()
	st = *tp.shards["s1"]
	_, still := tp.sh.held["s1"]
	tp.mu.RUnlock()
	if st.primary != "b2" || st.fo != configured || still {
		t.Fatalf("released shard: primary %q failover %+v (still held: %v)", st.primary, st.fo, still)
	}

	// The leader of the hold died: this proxy leads now and b2 is the one writable member.
	tp.ApplyShared(Shared{Version: 3, Shards: map[string]SharedShard{"s1": {Replicas: []string{"b3", "b1"}, Held: true, From: "b2"}}})
	tp.mu.Lock()
	for _, b := range []string{"b1", "b2", "b3"} {
		tp.health[b] = health.Status{Backend: b, State: health.Up, ReadOnly: b != "b3"}
	}
	tp.mu.Unlock()
	fc.mu.Lock()
	fc.leading = true
	fc.mu.Unlock()
	tp.LeadershipChanged()
	select {
	case p := <-fc.ch:
		if s := p.Shards["s1"]; s.Primary != "b3" || s.Held || !slices.Equal(s.Replicas, []string{"b2", "b1"}) {
			t.Errorf("published %+v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the new leader did not end the hold")
	}
}
