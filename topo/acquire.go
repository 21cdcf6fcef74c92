package topo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/pool"
	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// Acquire returns a connection to the backend that plays role for shard now, bounded by ctx
// and the pool's acquire timeout. For RoleReplica it picks a replica of the shard, or the
// primary when the shard has none.
func (t *Topology) Acquire(ctx context.Context, shard *rules.Shard, role rules.Role) (engine.Conn, error) {
	return t.AcquirePreferring(ctx, shard, role, nil)
}

// AcquirePreferring is Acquire that hands back prefer, a connection of this topology the
// caller released earlier, when it is idle and its backend still plays role.
func (t *Topology) AcquirePreferring(ctx context.Context, shard *rules.Shard, role rules.Role, prefer engine.Conn) (engine.Conn, error) {
	var giveUp time.Time // set at the first unreachable primary of a promote-mode shard
	for {
		m, err := t.pick(ctx, shard, role)
		if err != nil {
			return nil, err
		}
		var hint *pool.Conn
		if c, ok := prefer.(*Conn); ok && c.m == m {
			hint = c.Conn
		}
		changed, fo := t.watch(shard.Name)
		pc, err := m.pool.AcquireMatching(ctx, hint, shard.Database)
		if err == nil {
			c := &Conn{Conn: pc, m: m}
			m.track(c)
			return c, nil
		}
		m.leave()
		if !unreachable(ctx, err) || !managed(fo.Mode) {
			return nil, acquireError(ctx, shard, m.cfg.Name, err)
		}
		// The primary just became unreachable and the probes have not said so yet: wait
		// for the topology to change (suspect, then a new primary) as a buffered statement
		// would, instead of failing a statement that was never sent.
		if giveUp.IsZero() {
			giveUp = time.Now().Add(fo.BufferTimeout)
		}
		tm := time.NewTimer(time.Until(giveUp))
		select {
		case <-changed:
			tm.Stop()
		case <-ctx.Done():
			tm.Stop()
			return nil, acquireError(ctx, shard, m.cfg.Name, err)
		case <-tm.C:
			return nil, acquireError(ctx, shard, m.cfg.Name, err)
		}
	}
}

// watch returns the channel closed at the next change of the view, and shard's failover
// settings.
func (t *Topology) watch(shard string) (<-chan struct{}, rules.Failover) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var fo rules.Failover
	if st, ok := t.shards[shard]; ok {
		fo = st.fo
	}
	return t.changed, fo
}

// unreachable reports a dial that failed for want of a server (not its answer, not the
// pool's limits, not the statement's context).
func unreachable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, pool.ErrAcquireTimeout) || errors.Is(err, pool.ErrClosed) {
		return false
	}
	_, backendAnswered := sqlerr.As(err)
	return !backendAnswered
}

// pick finds the member playing role for shard and counts a connection on it. While a
// shard in promote mode has no writable primary (failover under way, primary suspect), a
// statement for it waits, bounded by ctx, the shard's buffer timeout and buffer size.
func (t *Topology) pick(ctx context.Context, shard *rules.Shard, role rules.Role) (*member, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	waited := false
	for {
		t.mu.RLock()
		st, ok := t.shards[shard.Name]
		if !ok {
			t.mu.RUnlock()
			return nil, sqlerr.New(sqlerr.ErCantConnect, "Can't connect to shard %s: it is not in the proxy's topology (a reload in progress?)", shard.Name)
		}
		name, why := t.targetLocked(st, role)
		m := t.backends[name]
		changed, fo := t.changed, st.fo
		t.mu.RUnlock()
		if m != nil {
			if m.enter() {
				return m, nil
			}
			continue // m began draining between the lookup and enter: look again
		}
		if !managed(fo.Mode) {
			return nil, sqlerr.New(sqlerr.ErCantConnect, "Can't connect to shard %s: %s", shard.Name, why)
		}
		if timer == nil {
			timer = time.NewTimer(fo.BufferTimeout)
		}
		if !waited {
			if !t.enterBuffer(shard.Name, fo.BufferMax) {
				return nil, sqlerr.New(sqlerr.ErConCount, "Too many connections: %d statements already wait for shard %s to get a writable primary", fo.BufferMax, shard.Name)
			}
			defer t.leaveBuffer(shard.Name)
			waited = true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, bufferError(ctx, shard, why)
		case <-timer.C:
			return nil, sqlerr.New(sqlerr.ErCantConnect, "Can't connect to shard %s: no writable primary after waiting %v (%s)", shard.Name, fo.BufferTimeout, why)
		}
	}
}

// targetLocked names the backend that plays role for st now, or "" and why none does.
// Called with t.mu held.
func (t *Topology) targetLocked(st *shardState, role rules.Role) (string, string) {
	if role == rules.RoleReplica {
		for _, r := range st.replicas {
			if _, fenced := t.fenced[r]; !fenced && t.health[r].State == health.Up {
				return r, ""
			}
		}
	}
	p := st.primary
	switch {
	case p == "":
		return "", "it has no writable primary now (failover under way)"
	case t.fenced[p] != "":
		return "", "its primary " + p + " is fenced (" + t.fenced[p] + ")"
	}
	if managed(st.fo.Mode) {
		switch h := t.health[p]; {
		case h.State == health.Suspect, h.State == health.Down:
			return "", fmt.Sprintf("its primary %s is %s: %s", p, h.State, h.Reason)
		case st.fo.Mode == rules.FailoverFollow && h.Err == nil && h.ReadOnly:
			return "", fmt.Sprintf("its primary %s reports read_only=1 (waiting for a backend of the shard to report read_only=0)", p)
		}
	}
	return p, ""
}

func (t *Topology) enterBuffer(shard string, limit int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.waiting[shard] >= limit {
		return false
	}
	t.waiting[shard]++
	return true
}

func (t *Topology) leaveBuffer(shard string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.waiting[shard]--
}

// bufferError is the error of a statement whose context ended while it waited for a primary.
func bufferError(ctx context.Context, shard *rules.Shard, why string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", sqlerr.New(sqlerr.ErQueryTimeout,
			"Query execution was interrupted, maximum statement execution time exceeded (waiting for shard %s: %s)", shard.Name, why), context.Cause(ctx))
	}
	return ctx.Err()
}

// deadlinePassed reports whether ctx is done or its deadline has passed (its timer may mark
// it done a moment after a socket deadline set to the same instant fired).
func deadlinePassed(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ctx.Err() != nil || (ok && !time.Now().Before(dl))
}

// acquireError maps a pool error to what the client should see.
func acquireError(ctx context.Context, shard *rules.Shard, backend string, err error) error {
	switch {
	case errors.Is(err, pool.ErrAcquireTimeout):
		return sqlerr.New(sqlerr.ErConCount,
			"Too many connections: the pool of backend %s (shard %s) is exhausted: %v", backend, shard.Name, err)
	case errors.Is(err, context.DeadlineExceeded) && deadlinePassed(ctx):
		// The statement's deadline ran out while it waited for a connection or dialled.
		return fmt.Errorf("%w: %w", sqlerr.New(sqlerr.ErQueryTimeout,
			"Query execution was interrupted, maximum statement execution time exceeded (waiting for a connection to backend %s of shard %s: %v)",
			backend, shard.Name, err), context.Cause(ctx))
	case ctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
		return err
	default:
		// A dial that timed out while the statement's own context is live is an unreachable
		// backend too, not the statement's deadline (which the client would read in a 3024).
		// Even a backend's own ERR (say, 1045 for the proxy's backend credentials) is the
		// proxy's problem, not the client's: report it as an unreachable backend.
		return sqlerr.New(sqlerr.ErCantConnect, "Can't connect to backend %s of shard %s: %v", backend, shard.Name, err)
	}
}

// Release gives a connection back to its pool.
func (t *Topology) Release(rc engine.Conn) {
	c := rc.(*Conn)
	if t.isFenced(c.m) {
		c.State().MarkBroken() // never reuse a connection to a fenced backend
	}
	c.m.pool.Release(c.Conn)
	c.m.untrack(c)
}
