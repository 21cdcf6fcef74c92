package router

import (
	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/format"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// execViewOf is s's execView now.
func execViewOf(s *Session) planner.ExecView {
	return planner.ExecView{DB: s.db, Flags: s.vars.restoreFlags, Locked: s.locks.locked(), Sticky: s.sticky, Vals: liveValues{s}}
}

// liveValues are the session's values as execution binds them (planner.SessionValues).
type liveValues struct{ s *Session }

// SessionValue is the session's value name now under snap (planner.Planner.SessionValue).
func (v liveValues) SessionValue(snap *rules.Snapshot, name string) (any, bool) {
	return v.s.planner(snap).SessionValue(name)
}

// multiRoute records a prepared multi-shard write that embeds session values (its
// branches' statements hold them), analysed on a tree of its own: each execution fills them
// in and splits it on that tree (resolveWrite). It returns nil for a write that embeds none
// (newWriteRoute keeps those) or asks about the previous statement.
func multiRoute(s *Session, snap *rules.Snapshot, text string) *planner.BoundRoute {
	st, err := s.parseOne(text)
	if err != nil {
		return nil
	}
	pl := s.planner(snap)
	a, err := pl.Analyze(snap, st)
	if err != nil || len(a.SessionVals) == 0 || a.Diagnostic || a.InfoSchema || pl.Locked {
		return nil
	}
	planner.NumberParams(a.Markers)
	db, err := pl.StatementDB(snap, a)
	if err != nil {
		return nil
	}
	b := &planner.BoundRoute{Snap: snap, Planner: pl, DB: pl.DB, Flags: pl.RestoreFlags, Stmt: st, Text: text, Refs: a.Refs, DB0: db, Analysis: a, Multi: true}
	b.BindVars(a)
	return b
}

// writeRoute is a multi-shard write whose branches its parameters do not change, planned
// once at PREPARE: a write to a broadcast table, an UPDATE or DELETE whose WHERE names no
// shard key (or literal keys of several slots), a multi-row INSERT whose keys are literals.
// Each EXECUTE hands each branch statement its values; nothing is parsed or restored. It
// holds for the snapshot, database and restore flags it was planned under, without LOCK
// TABLES; a write that embeds session values gets none (multiRoute).
type writeRoute struct {
	snap  *rules.Snapshot
	db    string
	flags format.RestoreFlags
	w     *plan.MultiWrite
}

// newWriteRoute keeps p, the prepare-time plan of a statement, when it is such a write.
func newWriteRoute(s *Session, snap *rules.Snapshot, p plan.Primitive) *writeRoute {
	w, ok := p.(*plan.MultiWrite)
	if !ok || w.Dynamic || w.Diagnostic || !w.Names.Empty() || s.locks.locked() {
		return nil
	}
	return &writeRoute{snap: snap, db: s.db, flags: s.vars.restoreFlags, w: w}
}

// resolve is the write's plan for one execution: the branches with the execution's
// values, each statement given the ones it kept (as planning with the values gives them).
func (r *writeRoute) resolve(v planner.ExecView, snap *rules.Snapshot, params []wire.Param) (*plan.MultiWrite, bool) {
	if r == nil || snap != r.snap || v.DB != r.db || v.Flags != r.flags || v.Locked {
		return nil, false
	}
	w := *r.w
	w.Branches = make([]plan.Branch, len(r.w.Branches))
	for i, b := range r.w.Branches {
		stmts := make([]plan.WriteStmt, len(b.Stmts))
		for j, ws := range b.Stmts {
			if params != nil {
				ws.Params = make([]wire.Param, len(ws.ParamIdx))
				for k, idx := range ws.ParamIdx {
					ws.Params[k] = params[idx]
				}
			}
			stmts[j] = ws
		}
		w.Branches[i] = plan.Branch{Shard: b.Shard, Stmts: stmts}
	}
	return &w, true
}

// replan plans a prepared statement again, as PREPARE did, under a snapshot that replaced
// the one it was planned under, and keeps the new plan for this and later executions: its
// bound route, kept branches, or its shard and SQL. A statement that no longer plans is
// planned in full at each execution under this snapshot, which reports why.
func (st *Stmt) replan(s *Session, snap *rules.Snapshot) {
	if node, err := s.parseOne(st.text); err == nil {
		if p, err := describePrepared(s, snap, node, st.text, st.returning); err == nil {
			st.setPlan(s, snap, p)
			return
		}
	}
	st.snap, st.dynamic, st.bound, st.writes = snap, true, nil, nil
}

// boundOf is the bound route of a prepare-time plan, nil when it has none.
func boundOf(p plan.Primitive) *planner.BoundRoute {
	if r, ok := plan.RouteOf(p); ok {
		b, _ := r.Bound.(*planner.BoundRoute)
		return b
	}
	return nil
}
