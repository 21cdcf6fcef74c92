package router

import (
	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// Planner is the session's read-only view for planning a statement under snap.
func (s *Session) planner(snap *rules.Snapshot) *planner.Planner {
	d, _ := s.vars.deadline(snap, s.user, s.db, hintDeadline{})
	return &planner.Planner{DB: s.db, User: s.user, ConnID: s.info.ConnID, LastInsertID: s.ids.last, Diag: s.diag.last,
		Sticky: s.sticky, RestoreFlags: s.vars.restoreFlags, Deadline: d,
		Version: s.r.version, MaxPkt: s.r.maxPkt, Lists: s.lists, Locked: s.locks.locked(),
		InTxn: s.inTransaction() || len(s.pinned) > 0}
}

// readView is what the read/write split reads of the session (planner.ReadView): built
// alone, since every statement's execution asks for it.
func (s *Session) readView() planner.ReadView {
	return planner.ReadView{User: s.user, DB: s.db, InTxn: s.inTransaction() || len(s.pinned) > 0, Held: s.sticky || s.locks.locked()}
}

// plan decides where a statement goes under snap (planner.Planner.Plan).
func (s *Session) plan(snap *rules.Snapshot, st ast.StmtNode, text string, params []wire.Param) (plan.Primitive, error) {
	return s.planner(snap).Plan(snap, st, text, params)
}

// describe plans a statement at prepare time, with no parameters bound: a statement routed
// by its parameters is described from one shard (see planner.describing).
func (s *Session) describe(snap *rules.Snapshot, st ast.StmtNode, text string) (plan.Primitive, error) {
	pl := s.planner(snap)
	pl.Describing = true
	return pl.Plan(snap, st, text, nil)
}
