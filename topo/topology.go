package topo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/pool"
	"github.com/shardproxy/shardproxy/router"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
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
}

// Topology is the runtime view of every shard and the owner of every backend pool. It is
// safe for concurrent use. Close stops it.
type Topology struct {
	log   *slog.Logger
	drain time.Duration

	mu       sync.RWMutex
	version  uint64
	closed   bool
	backends map[string]*member
	shards   map[string]*shardState

	stop   chan struct{} // closed by Close: drains end at once
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
}

var (
	_ router.Backend           = (*Topology)(nil)
	_ router.PreferringBackend = (*Topology)(nil)
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
	t := &Topology{log: opts.Logger, drain: opts.DrainTimeout, backends: map[string]*member{},
		shards: map[string]*shardState{}, stop: make(chan struct{})}
	if err := t.Apply(context.Background(), snap); err != nil {
		t.Close()
		return nil, err
	}
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
		}
	}
	t.backends = next
	t.shards = t.nextShards(snap)
	t.version++
	version := t.version
	t.mu.Unlock()

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
		st := &shardState{name: sh.Name, database: sh.Database, primary: sh.Primary.Name, config: shardConfigKey(sh)}
		for _, r := range sh.Replicas {
			st.replicas = append(st.replicas, r.Name)
		}
		if old, ok := t.shards[sh.Name]; ok && old.config == st.config {
			st.primary, st.replicas = old.primary, old.replicas
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

// Version returns the topology version: it grows with every change of the view (reload,
// promotion, fencing).
func (t *Topology) Version() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.version
}

// Acquire returns a connection to the backend that plays role for shard now, bounded by ctx
// and the pool's acquire timeout. For RoleReplica it picks a replica of the shard, or the
// primary when the shard has none.
func (t *Topology) Acquire(ctx context.Context, shard *rules.Shard, role rules.Role) (router.Conn, error) {
	return t.AcquirePreferring(ctx, shard, role, nil)
}

// AcquirePreferring is Acquire that hands back prefer, a connection of this topology the
// caller released earlier, when it is idle and its backend still plays role.
func (t *Topology) AcquirePreferring(ctx context.Context, shard *rules.Shard, role rules.Role, prefer router.Conn) (router.Conn, error) {
	m, err := t.pick(shard, role)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			m.leave()
		}
	}()
	var hint *pool.Conn
	if c, ok := prefer.(*Conn); ok && c.m == m {
		hint = c.Conn
	}
	pc, err := m.pool.AcquireMatching(ctx, hint, shard.Database)
	if err != nil {
		return nil, acquireError(ctx, shard, m.cfg.Name, err)
	}
	return &Conn{Conn: pc, m: m}, nil
}

// pick finds the member playing role for shard and counts a connection on it.
func (t *Topology) pick(shard *rules.Shard, role rules.Role) (*member, error) {
	for {
		t.mu.RLock()
		st, ok := t.shards[shard.Name]
		if !ok {
			t.mu.RUnlock()
			return nil, sqlerr.New(sqlerr.ErCantConnect, "Can't connect to shard %s: it is not in the proxy's topology (a reload in progress?)", shard.Name)
		}
		name := st.primary
		if role == rules.RoleReplica && len(st.replicas) > 0 {
			name = st.replicas[0]
		}
		m := t.backends[name]
		t.mu.RUnlock()
		if name == "" || m == nil {
			return nil, sqlerr.New(sqlerr.ErCantConnect, "Can't connect to shard %s: it has no writable primary now", shard.Name)
		}
		if m.enter() {
			return m, nil
		}
		// m began draining between the lookup and enter: a reload replaced it; look again.
	}
}

// acquireError maps a pool error to what the client should see.
func acquireError(ctx context.Context, shard *rules.Shard, backend string, err error) error {
	switch {
	case errors.Is(err, pool.ErrAcquireTimeout):
		return sqlerr.New(sqlerr.ErConCount,
			"Too many connections: the pool of backend %s (shard %s) is exhausted: %v", backend, shard.Name, err)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		// The statement's deadline ran out while it waited for a connection or dialled.
		return fmt.Errorf("%w: %w", sqlerr.New(sqlerr.ErQueryTimeout,
			"Query execution was interrupted, maximum statement execution time exceeded (waiting for a connection to backend %s of shard %s: %v)",
			backend, shard.Name, err), context.Cause(ctx))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return err
	default:
		// Even a backend's own ERR (say, 1045 for the proxy's backend credentials) is the
		// proxy's problem, not the client's: report it as an unreachable backend.
		return sqlerr.New(sqlerr.ErCantConnect, "Can't connect to backend %s of shard %s: %v", backend, shard.Name, err)
	}
}

// Release gives a connection back to its pool.
func (t *Topology) Release(rc router.Conn) {
	c := rc.(*Conn)
	c.m.pool.Release(c.Conn)
	c.m.leave()
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
