package topo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
)

// DefaultDrainTimeout bounds how long the pool of a removed or changed backend waits for
// the statements in flight on it before it closes.
const DefaultDrainTimeout = 30 * time.Second

// Options configures a Topology; the zero value of each field selects its default.
type Options struct {
	// Logger receives topology changes; default slog.Default().
	Logger *slog.Logger
	// DrainTimeout bounds the drain of a replaced pool (see Apply); default 30s.
	DrainTimeout time.Duration
	// Prober is told which backends to probe (and where to write heartbeats) whenever the
	// topology changes; its results come back through Observe. Nil: no health checks, no
	// automatic failover.
	Prober Prober
	// Events receives failover events (for metrics); nil: none.
	Events func(Event)
	// Coordinator, when set, makes this proxy one of several sharing the topology (shared.go):
	// only the elected leader promotes, and every proxy applies what it publishes. Nil: this
	// proxy acts alone.
	Coordinator Coordinator
}

// Prober is what topo needs from the health checker (satisfied by *health.Checker).
type Prober interface {
	SetTargets([]health.Target)
}

// Topology is the runtime view of every shard and the owner of every backend pool. It is
// safe for concurrent use. Close stops it.
type Topology struct {
	log    *slog.Logger
	drain  time.Duration
	prober Prober
	events func(Event) // records into hist, then calls Options.Events
	hist   history

	mu       sync.RWMutex
	version  uint64
	closed   bool
	backends map[string]*member
	shards   map[string]*shardState
	fenced   map[string]string        // backend name → why it is fenced
	health   map[string]health.Status // latest probe of each backend probed now
	probed   map[string]bool          // the backends the health checker is told to probe
	activity map[string]activity      // replication activity seen on each replica
	warned   map[string]string        // backend name → settings warning last logged
	changed  chan struct{}            // closed and replaced whenever a waiter may proceed
	waiting  map[string]int           // statements buffered per shard
	sh       sharing                  // the topology shared with other proxies (shared.go)

	stop   chan struct{} // closed by Close: drains and the failover controller end
	kick   chan struct{} // cap 1: wakes the failover controller
	drains sync.WaitGroup
}

// shardState is the runtime role assignment of one shard. Replaced, never modified in place,
// under Topology.mu.
type shardState struct {
	name     string
	database string
	primary  string   // backend name of the writable primary now; "" while it has none
	replicas []string // backend names
	// config is the (primary, replicas) the configuration named when it was last applied;
	// a reload that names the same keeps the runtime assignment.
	config string
	fo     rules.Failover
	// failover describes the last failover of the shard (empty: none), for the admin view.
	failover string
}

var (
	_ engine.Backend           = (*Topology)(nil)
	_ engine.PreferringBackend = (*Topology)(nil)
)

// New builds a topology for snap: a pool (lazy: nothing is dialled here) per backend, and
// each shard's primary and replicas as the configuration names them.
func New(snap *rules.Snapshot, opts Options) (*Topology, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.Events == nil {
		opts.Events = func(Event) {}
	}
	t := &Topology{log: opts.Logger, drain: opts.DrainTimeout, prober: opts.Prober, events: opts.Events,
		backends: map[string]*member{}, shards: map[string]*shardState{}, fenced: map[string]string{},
		health: map[string]health.Status{}, probed: map[string]bool{}, activity: map[string]activity{}, warned: map[string]string{},
		changed: make(chan struct{}), waiting: map[string]int{},
		stop: make(chan struct{}), kick: make(chan struct{}, 1), sh: sharing{coord: opts.Coordinator}}
	t.events = t.hist.recorder(opts.Events)
	if err := t.Apply(context.Background(), snap); err != nil {
		t.Close()
		return nil, err
	}
	t.drains.Go(t.controller)
	return t, nil
}

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("topo: closed")

// Apply reconciles the topology with snap (a reload). Backends whose settings are unchanged
// keep their pools and connections untouched; new ones get a pool; removed or changed ones
// stop handing out connections at once, and their pools close when the statements in
// flight on them have finished, or after the drain timeout, whichever is first (the
// Topology owns that wait; Close ends it). Shards the configuration names as before keep
// their runtime roles (a promoted replica stays primary); new or changed shards take the
// roles the configuration gives. On error nothing changed. Apply does not block on drains.
func (t *Topology) Apply(ctx context.Context, snap *rules.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fresh := map[string]*member{}
	t.mu.RLock()
	for _, b := range snap.Backends() {
		if old, ok := t.backends[b.Name]; ok && old.cfg == *b {
			continue
		}
		m, err := newMember(b, t.log)
		if err != nil {
			t.mu.RUnlock()
			closeMembers(fresh)
			return fmt.Errorf("topo: backend %s: %w", b.Name, err)
		}
		fresh[b.Name] = m
	}
	t.mu.RUnlock()

	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		closeMembers(fresh)
		return ErrClosed
	}
	var gone []*member
	next := make(map[string]*member, len(snap.Backends()))
	for _, b := range snap.Backends() {
		if m, ok := fresh[b.Name]; ok {
			next[b.Name] = m
		} else {
			next[b.Name] = t.backends[b.Name]
		}
	}
	for name, m := range t.backends {
		if next[name] != m {
			gone = append(gone, m)
			// An operator re-adding a fenced backend (changed or removed settings) unfences it.
			delete(t.fenced, name)
		}
	}
	t.backends = next
	t.shards = t.nextShards(snap)
	t.changeLocked()
	version := t.version
	targets := t.targetsLocked()
	t.mu.Unlock()
	t.setTargets(targets)
	t.kickController() // a leader publishes the reloaded roles (shared.go)

	for _, m := range gone {
		t.log.Info("topo: draining the pool of a removed or changed backend", "backend", m.cfg.Name, "addr", m.cfg.Addr)
		idle := m.drain() // no new connection from here on
		t.drains.Go(func() { t.drainMember(m, idle) })
	}
	if len(fresh) > 0 || len(gone) > 0 {
		t.log.Info("topo: applied configuration", "version", version, "new_pools", len(fresh), "drained_pools", len(gone))
	}
	return nil
}

// nextShards builds the shard states of snap, keeping the runtime roles of shards whose
// configured members did not change. Called with t.mu held.
func (t *Topology) nextShards(snap *rules.Snapshot) map[string]*shardState {
	out := make(map[string]*shardState, len(snap.Shards()))
	for _, sh := range snap.Shards() {
		st := &shardState{name: sh.Name, database: sh.Database, primary: sh.Primary.Name, config: shardConfigKey(sh), fo: sh.Failover}
		for _, r := range sh.Replicas {
			st.replicas = append(st.replicas, r.Name)
		}
		if old, ok := t.shards[sh.Name]; ok && old.config == st.config {
			st.primary, st.replicas, st.failover = old.primary, old.replicas, old.failover
		}
		out[sh.Name] = st
	}
	return out
}

// shardConfigKey identifies the members a shard's configuration names.
func shardConfigKey(sh *rules.Shard) string {
	k := sh.Primary.Name
	for _, r := range sh.Replicas {
		k += "," + r.Name
	}
	return k
}

// drainMember waits until m has no connection in use (or the drain timeout, or Close) and
// closes its pool.
func (t *Topology) drainMember(m *member, idle <-chan struct{}) {
	timer := time.NewTimer(t.drain)
	defer timer.Stop()
	select {
	case <-idle:
	case <-timer.C:
		t.log.Warn("topo: drain timeout: closing a pool with connections in use", "backend", m.cfg.Name, "timeout", t.drain)
	case <-t.stop:
	}
	_ = m.pool.Close()
}

func closeMembers(ms map[string]*member) {
	for _, m := range ms {
		_ = m.pool.Close()
	}
}

// Close closes every pool (connections in use close when released) and ends the drains in
// progress, waiting for them. It is idempotent.
func (t *Topology) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.drains.Wait()
		return
	}
	t.closed = true
	close(t.stop)
	ms := t.backends
	t.backends = map[string]*member{}
	t.mu.Unlock()
	for _, m := range ms {
		m.drain()
	}
	closeMembers(ms)
	t.drains.Wait()
}

// changeLocked records a change of the view: a new version, and waiters wake. Called with
// t.mu held for writing.
func (t *Topology) changeLocked() {
	t.version++
	close(t.changed)
	t.changed = make(chan struct{})
}

// isFenced reports whether m's backend is fenced (or m is no longer the topology's member
// for its name).
func (t *Topology) isFenced(m *member) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, fenced := t.fenced[m.cfg.Name]
	return fenced
}

// Version returns the topology version: it grows with every change of the view (reload,
// promotion, fencing).
func (t *Topology) Version() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.version
}

// sortedNames returns the keys of m in order.
func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
