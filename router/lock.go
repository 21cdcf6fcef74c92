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
func (s *Session) planLock(snap *rules.Snapshot, st *ast.LockTablesStmt) (targets []lockTarget, ok bool, err error) {
	a := &analyzer{pl: s.planner(snap), snap: snap, ctes: map[string]bool{}, sources: map[*ast.TableName]*ast.TableSource{}}
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

// lockTables runs LOCK TABLES on sharded or broadcast tables: on every shard holding them,
// one after another in a fixed order, each on a connection the session keeps until UNLOCK
// TABLES. Shards locked by an earlier LOCK TABLES and not by this one are unlocked (a LOCK
// TABLES releases the session's earlier locks, as on one server). If a shard fails, the
// shards locked so far are unlocked and its error returned.
func (s *Session) lockTables(ctx context.Context, snap *rules.Snapshot, targets []lockTarget, more bool, w wire.PacketWriter) error {
	for _, l := range s.locks {
		if !slices.ContainsFunc(targets, func(t lockTarget) bool { return t.shard.Name == l.shard.Name }) {
			if err := s.unlockShard(ctx, snap, l.shard); err != nil {
				return err
			}
		}
	}
	s.locks = nil
	if err := s.takeLocks(ctx, snap, targets); err != nil {
		return err
	}
	return s.writeOK(w, more)
}

// takeLocks runs targets in order and records them as the session's locks.
func (s *Session) takeLocks(ctx context.Context, snap *rules.Snapshot, targets []lockTarget) error {
	s.sticky = true // locks live in the backend sessions
	for _, t := range targets {
		if err := s.run(ctx, snap, t.shard, t.sql, false, engine.Discard{}); err != nil {
			_ = s.unlockTables(ctx, snap)
			return err
		}
		s.locks = append(s.locks, t)
	}
	return nil
}

// unlockTables releases the table locks of every shard locked by lockTables, in order.
func (s *Session) unlockTables(ctx context.Context, snap *rules.Snapshot) error {
	var first error
	for _, l := range s.locks {
		if err := s.unlockShard(ctx, snap, l.shard); err != nil && first == nil {
			first = err
		}
	}
	s.locks = nil
	return first
}

// unlockShard sends UNLOCK TABLES to the connection holding shard's locks.
func (s *Session) unlockShard(ctx context.Context, snap *rules.Snapshot, shard *rules.Shard) error {
	c, ok := s.pinned[shard.Name]
	if !ok {
		return nil // the connection is gone, and its locks with it
	}
	return s.runOn(ctx, snap, shard, c, "UNLOCK TABLES", false, engine.Discard{})
}

// execMultiLocked runs a multi-shard write while the session holds table locks. MariaDB
// starts no XA transaction (nor a local one, which would release them) under LOCK TABLES, so
// the locks are released for the write's atomic commit and taken again, in the same order,
// right after it. The client gets the write's answer only once the locks are back; if they
// cannot be taken again, the connection is closed (the write itself is committed).
func (s *Session) execMultiLocked(ctx context.Context, snap *rules.Snapshot, p *plan.MultiWrite, more bool, w wire.PacketWriter) error {
	locks := s.locks
	if err := s.unlockTables(ctx, snap); err != nil {
		return err
	}
	var k engine.Collector
	werr := s.execMulti(ctx, snap, p, more, &k)
	if err := s.takeLocks(ctx, snap, locks); err != nil {
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
