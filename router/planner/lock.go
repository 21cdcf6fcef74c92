package planner

import (
	"cmp"
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/rules"
)

// LockTarget is the LOCK TABLES one shard runs.
type LockTarget struct {
	Shard *rules.Shard
	SQL   string
}

// PlanLock turns LOCK TABLES into one LOCK TABLES per shard holding a physical copy of a
// listed table (every slot table of a table per slot, every copy of a broadcast table, a
// single table on its database's default shard), in shard name order: every session locks
// shards in the same order, so two of them cannot each hold a shard the other waits for.
// ok is false when no listed table is sharded or broadcast (the statement then runs as
// usual on its shard).
func (pl *Planner) PlanLock(snap *rules.Snapshot, st *ast.LockTablesStmt) (targets []LockTarget, ok bool, err error) {
	a := pl.newAnalyzer(snap)
	defer a.ed.undo(st)
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
	for _, r := range a.Refs {
		kind := kinds[r.Node].String()
		for _, pl := range r.Table.Placements() {
			// Slot tables are locked under their own names: while the session holds locks,
			// statements name them bare (see tableRef.bare).
			item := quoteIdent(pl.Shard.Database) + "." + quoteIdent(pl.Table) + " " + kind
			if !slices.Contains(byShard[pl.Shard], item) {
				byShard[pl.Shard] = append(byShard[pl.Shard], item)
			}
		}
	}
	for sh, items := range byShard {
		targets = append(targets, LockTarget{Shard: sh, SQL: "LOCK TABLES " + strings.Join(items, ", ")})
	}
	slices.SortFunc(targets, func(x, y LockTarget) int { return cmp.Compare(x.Shard.Name, y.Shard.Name) })
	return targets, true, nil
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
