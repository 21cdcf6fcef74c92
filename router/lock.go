package router

import (
	"context"
	"fmt"
	"slices"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// tableLocks is the LOCK TABLES a session holds on shards, in locking order (every session
// locks shards in the same order: planLock), and how they are taken and given up. Its
// statements run through a lockExec, on connections the session keeps. The zero value holds
// no locks. Owned by one Session; not safe for concurrent use.
type tableLocks struct {
	held []planner.LockTarget // the LOCK TABLES each locked shard ran
}

// lockExec runs the statements of table locks for a session under one snapshot.
type lockExec struct {
	// run runs sql on shard's connection, which the session then keeps.
	run func(ctx context.Context, shard *rules.Shard, sql string) error
	// unlock sends UNLOCK TABLES to the connection holding shard's locks; nothing when the
	// connection is gone, and its locks with it.
	unlock func(ctx context.Context, shard *rules.Shard) error
}

// locked reports whether the session holds table locks on any shard.
func (l *tableLocks) locked() bool { return len(l.held) > 0 }

// replace runs LOCK TABLES targets: on every shard holding them, one after another in a
// fixed order. Shards locked by an earlier LOCK TABLES and not by this one are unlocked (a
// LOCK TABLES releases the session's earlier locks, as on one server). If a shard fails,
// the shards locked so far are unlocked and its error returned.
func (l *tableLocks) replace(ctx context.Context, x lockExec, targets []planner.LockTarget) error {
	for _, h := range l.held {
		if !slices.ContainsFunc(targets, func(t planner.LockTarget) bool { return t.Shard.Name == h.Shard.Name }) {
			if err := x.unlock(ctx, h.Shard); err != nil {
				return err
			}
		}
	}
	l.held = nil
	return l.take(ctx, x, targets)
}

// take runs targets in order and records them as the session's locks; if one fails, the
// locks taken so far are released and its error returned.
func (l *tableLocks) take(ctx context.Context, x lockExec, targets []planner.LockTarget) error {
	for _, t := range targets {
		if err := x.run(ctx, t.Shard, t.SQL); err != nil {
			_ = l.release(ctx, x)
			return err
		}
		l.held = append(l.held, t)
	}
	return nil
}

// release releases the table locks of every locked shard, in order; the first error is
// returned, and the session holds no locks afterwards.
func (l *tableLocks) release(ctx context.Context, x lockExec) error {
	var first error
	for _, h := range l.held {
		if err := x.unlock(ctx, h.Shard); err != nil && first == nil {
			first = err
		}
	}
	l.held = nil
	return first
}

// lockExec runs the statements of the session's table locks under snap.
func (s *Session) lockExec(snap *rules.Snapshot) lockExec {
	return lockExec{
		run: func(ctx context.Context, shard *rules.Shard, sql string) error {
			s.sticky = true // locks live in the backend sessions
			return s.run(ctx, snap, shard, sql, false, engine.Discard{})
		},
		unlock: func(ctx context.Context, shard *rules.Shard) error {
			c, ok := s.pinned[shard.Name]
			if !ok {
				return nil // the connection is gone, and its locks with it
			}
			return s.runOn(ctx, snap, shard, c, "UNLOCK TABLES", false, engine.Discard{})
		},
	}
}

// execMultiLocked runs a multi-shard write while the session holds table locks. MariaDB
// starts no XA transaction (nor a local one, which would release them) under LOCK TABLES, so
// the locks are released for the write's atomic commit and taken again, in the same order,
// right after it. The client gets the write's answer only once the locks are back; if they
// cannot be taken again, the connection is closed (the write itself is committed).
func (s *Session) execMultiLocked(ctx context.Context, snap *rules.Snapshot, p *plan.MultiWrite, more bool, w wire.PacketWriter) error {
	x := s.lockExec(snap)
	locks := s.locks.held
	if err := s.locks.release(ctx, x); err != nil {
		return err
	}
	var k engine.Collector
	werr := s.execMulti(ctx, snap, p, more, &k)
	if err := s.locks.take(ctx, x, locks); err != nil {
		return fmt.Errorf("%w: %w", sqlerr.ErrFatal, sqlerr.New(sqlerr.ErConnLost,
			"Lost the session's table locks: taking them again after a write spanning shards failed (%v)", err))
	}
	if werr != nil {
		return werr
	}
	for _, pk := range k.Pkts {
		if err := w.WritePacket(pk); err != nil {
			return err
		}
	}
	return nil
}
