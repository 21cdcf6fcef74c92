package router

import (
	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
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

// replan plans a prepared statement again, as PREPARE did, under a snapshot that replaced
// the one it was planned under, and keeps the new plan for this and later executions: its
// bound route, kept branches, or its shard and SQL. A statement that no longer plans is
// planned in full at each execution under this snapshot, which reports why.
func (st *Stmt) replan(s *Session, snap *rules.Snapshot) {
	if node, err := s.parseOne(st.text); err == nil {
		if p, err := s.planner(snap).DescribePrepared(snap, node, st.text, st.returning); err == nil {
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
