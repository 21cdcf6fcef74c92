package router

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// lockTarget is the LOCK TABLES one shard runs.
type lockTarget struct {
	shard *rules.Shard
	sql   string
}

// planLock turns LOCK TABLES into one LOCK TABLES per shard holding a physical copy of a
// listed table (every slot table of a table per slot, every copy of a broadcast table, a
// single table on its database's default shard), in shard name order: every session locks
// shards in the same order, so two of them cannot each hold a shard the other waits for.
// ok is false when no listed table is sharded or broadcast (the statement then runs as
// usual on its shard).
func (pl *planner) planLock(snap *rules.Snapshot, st *ast.LockTablesStmt) (targets []lockTarget, ok bool, err error) {
	a := &analyzer{pl: pl, snap: snap, ctes: map[string]bool{}, sources: map[*ast.TableName]*ast.TableSource{}}
	st.Accept(a)
	if a.err != nil {
		return nil, false, a.err
	}
	if !a.routed() {
		return nil, false, nil
	}
	kinds := map[*ast.TableName]ast.TableLockType{}
	for _, tl := range st.TableLocks {
		kinds[tl.Table] = tl.Type
	}
	byShard := map[*rules.Shard][]string{}
	for _, r := range a.refs {
		kind := kinds[r.node].String()
		for _, pl := range r.table.Placements() {
			// Slot tables are locked under their own names: while the session holds locks,
			// statements name them bare (see tableRef.bare).
			item := quoteIdent(pl.Shard.Database) + "." + quoteIdent(pl.Table) + " " + kind
			if !slices.Contains(byShard[pl.Shard], item) {
				byShard[pl.Shard] = append(byShard[pl.Shard], item)
			}
		}
	}
	for sh, items := range byShard {
		targets = append(targets, lockTarget{shard: sh, sql: "LOCK TABLES " + strings.Join(items, ", ")})
	}
	slices.SortFunc(targets, func(x, y lockTarget) int { return cmp.Compare(x.shard.Name, y.shard.Name) })
	return targets, true, nil
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// tableLocks is the LOCK TABLES a session holds on shards, in locking order (every session
// locks shards in the same order: planLock), and how they are taken and given up. Its
// statements run through a lockExec, on connections the session keeps. The zero value holds
// no locks. Owned by one Session; not safe for concurrent use.
type tableLocks struct {
	held []lockTarget // the LOCK TABLES each locked shard ran
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
func (l *tableLocks) replace(ctx context.Context, x lockExec, targets []lockTarget) error {
	for _, h := range l.held {
		if !slices.ContainsFunc(targets, func(t lockTarget) bool { return t.shard.Name == h.shard.Name }) {
			if err := x.unlock(ctx, h.shard); err != nil {
				return err
			}
		}
	}
	l.held = nil
	return l.take(ctx, x, targets)
}

// take runs targets in order and records them as the session's locks; if one fails, the
// locks taken so far are released and its error returned.
func (l *tableLocks) take(ctx context.Context, x lockExec, targets []lockTarget) error {
	for _, t := range targets {
		if err := x.run(ctx, t.shard, t.sql); err != nil {
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
		if err := x.unlock(ctx, h.shard); err != nil && first == nil {
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
