package planner

import (
	"errors"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// ErrNestedUnpinned marks the refusal of a statement whose subqueries' sharded tables are
// not pinned to one shard: binding the subqueries' values may make it answerable.
var ErrNestedUnpinned = errors.New("router: subquery over sharded tables not pinned to one shard")

// nestedRefusal is a refusal that errors.Is recognises as errNestedUnpinned.
type nestedRefusal struct{ err *sqlerr.Error }

func (n nestedRefusal) Error() string { return n.err.Error() }

func (n nestedRefusal) Unwrap() []error { return []error{n.err, ErrNestedUnpinned} }

// DescribeNested is the prepare-time plan of st, which planning refused for subqueries over
// sharded tables on several shards: slot 0's shard and the statement naming its tables.
func (pl *Planner) DescribeNested(snap *rules.Snapshot, st ast.StmtNode) (*plan.Route, error) {
	a := pl.newAnalyzer(snap)
	defer a.ed.undo(st)
	st.Accept(a)
	if a.err != nil {
		return nil, a.err
	}
	a.numberParams()
	db, err := pl.StatementDB(snap, a)
	if err != nil {
		return nil, err
	}
	var shard *rules.Shard
	top := topLevelTables(st)
	_, isDelete := st.(*ast.DeleteStmt)
	_, isInsert := st.(*ast.InsertStmt)
	for _, r := range a.Refs {
		if r.Table.Kind != rules.KindSharded {
			continue
		}
		if shard == nil {
			shard = r.Table.Scheme.SlotShard(0)
		}
		a.ed.rename(r, r.Table.PhysicalName(0), !((isDelete || isInsert) && top[r.Node]))
	}
	if shard == nil {
		shard = db.DefaultShard
	}
	if err := checkSingles(a.Refs, shard); err != nil {
		return nil, err
	}
	for _, ref := range a.schemas {
		a.ed.name(ref, ast.NewCIStr(shard.Database))
	}
	a.ed.nameFields(a.unnamed)
	sql, err := pl.Restore(st)
	if err != nil {
		return nil, err
	}
	return &plan.Route{Attrs: plan.Attrs{Sticky: a.Sticky, Dynamic: true, Columns: introspect.ColumnsOf(db, shard)}, Shard: shard, SQL: sql}, nil
}

// DescribeBound describes a prepared statement refused for its subqueries (refusal, see
// DescribeNested): a SELECT, UPDATE, DELETE or INSERT, whose subqueries the session binds
// at each EXECUTE; any other statement keeps its refusal.
func (pl *Planner) DescribeBound(snap *rules.Snapshot, st ast.StmtNode, refusal error) (plan.Primitive, error) {
	switch st.(type) {
	case *ast.SelectStmt, *ast.UpdateStmt, *ast.DeleteStmt, *ast.InsertStmt:
	default:
		return nil, refusal
	}
	r, err := pl.DescribeNested(snap, st)
	if err != nil {
		return nil, err // not r: a nil *plan.Route is no nil Primitive
	}
	return r, nil
}
