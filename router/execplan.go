package router

import (
	"context"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// execPlan runs p, the plan of the client's statement st (text), and answers the client on
// w. It is the executor's dispatch: one case per primitive of router/plan. The primitives
// are plain values and carry no Execute method: running one needs the session (its
// transaction, pinned connections, diagnostics, read split), which must not be reachable
// from router/plan.
func (s *Session) execPlan(ctx context.Context, snap *rules.Snapshot, st ast.StmtNode, text string, p plan.Primitive, more bool, w wire.PacketWriter) error {
	attrs := p.Attributes()
	if attrs.Sticky {
		s.sticky = true
	}
	s.diag.keep = attrs.Diagnostic
	defer func() { s.diag.keep = false }()
	if !attrs.Names.Empty() {
		w = introspect.NewRows(w, attrs.Names, false)
	}
	if !attrs.Columns.Empty() {
		w = introspect.NewColumns(w, attrs.Columns)
	}
	switch p := p.(type) {
	case *plan.Route:
		return s.execRoute(ctx, snap, st, text, p, more, w)
	case *plan.Passthrough:
		return s.execRoute(ctx, snap, st, text, &p.Route, more, w) // run as the Route it is
	case *plan.Scatter:
		s.route = RouteScatter
		return s.runScatterRead(ctx, snap, p, s.readView().StatementSplit(snap, st, text), more, w, false) // readretry.go
	case *plan.MultiWrite:
		if s.locks.locked() {
			return s.execMultiLocked(ctx, snap, p, more, w) // lock.go
		}
		s.reads.forgetGTIDs(planner.SplitSetting(snap, s.user, s.db), p.Branches)
		s.route = RouteMultiWrite
		s.branchRows = rowsKindOf(st)
		defer func() { s.branchRows = rowsPlain }()
		return s.execMulti(ctx, snap, p, more, w) // xa.go
	case *plan.DDL:
		s.route = RouteDDL
		return lostWrite(s.fanOutDDL(ctx, snap, p, more, w)) // ddl.go
	case *plan.Local:
		return localResult{cols: p.Columns, rows: p.Rows}.write(w, s.resultStatus(more), false) // local.go
	}
	return sqlerr.New(sqlerr.ErUnknownError, "router: no executor for plan primitive %T", p)
}

// execRoute runs a statement on its one shard: a write under the transaction's one-writer
// rule, a read on a replica when the read split allows it.
func (s *Session) execRoute(ctx context.Context, snap *rules.Snapshot, st ast.StmtNode, text string, r *plan.Route, more bool, w wire.PacketWriter) error {
	s.route = RouteSingle
	if planner.IsWrite(st) {
		if err := s.checkWrite(ctx, r.Shard); err != nil {
			return err
		}
		return lostWrite(s.runFoundRows(rowsKindOf(st), w, func(w wire.PacketWriter) error {
			return s.run(ctx, snap, r.Shard, r.SQL, more, w)
		}))
	}
	s.reads.replica = s.readView().StatementSplit(snap, st, text)
	defer func() { s.reads.replica = rules.ReadSplit{} }()
	return s.runRead(ctx, snap, r.Shard, r.SQL, more, w)
}
