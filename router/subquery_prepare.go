package router

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
)

// A prepared statement whose subqueries over sharded tables are not pinned to one shard
// (subquery_bind.go) is described at PREPARE from one shard: every sharded table, in the
// statement and in its subqueries, named as slot 0's physical table, the statement prepared
// on slot 0's shard to learn its parameters and columns. Each EXECUTE binds the parameters
// into the statement, runs its subqueries with them and binds their values, then plans and
// runs the result like a plain query, its rows encoded in the binary protocol.

// describeNested is the prepare-time plan of st, which planning refused for subqueries over
// sharded tables on several shards: slot 0's shard and the statement naming its tables.
func (pl *planner) describeNested(snap *rules.Snapshot, st ast.StmtNode) (*plan.Route, error) {
	a := &analyzer{pl: pl, snap: snap, ctes: map[string]bool{}, sources: map[*ast.TableName]*ast.TableSource{}}
	st.Accept(a)
	if a.err != nil {
		return nil, a.err
	}
	numberParams(a.markers)
	db, err := pl.statementDB(snap, a)
	if err != nil {
		return nil, err
	}
	var shard *rules.Shard
	top := topLevelTables(st)
	_, isDelete := st.(*ast.DeleteStmt)
	_, isInsert := st.(*ast.InsertStmt)
	for _, r := range a.refs {
		if r.table.Kind != rules.KindSharded {
			continue
		}
		if shard == nil {
			shard = r.table.Scheme.SlotShard(0)
		}
		rename(r, r.table.PhysicalName(0), !((isDelete || isInsert) && top[r.node]))
	}
	if shard == nil {
		shard = db.DefaultShard
	}
	if err := checkSingles(a.refs, shard); err != nil {
		return nil, err
	}
	for _, ref := range a.schemas {
		*ref = ast.NewCIStr(shard.Database)
	}
	for _, f := range a.unnamed {
		f.AsName = ast.NewCIStr(strings.TrimSpace(f.Text()))
	}
	sql, err := pl.restore(st)
	if err != nil {
		return nil, err
	}
	return &plan.Route{Attrs: plan.Attrs{Sticky: a.sticky, Dynamic: true, Columns: introspect.ColumnsOf(db, shard)}, Shard: shard, SQL: sql}, nil
}

// describeBound describes a prepared statement refused for its subqueries (see
// describeNested).
func (s *Session) describeBound(snap *rules.Snapshot, text string, refusal error) (plan.Primitive, error) {
	st, ok := s.rebindable(text)
	if !ok {
		return nil, refusal
	}
	r, err := s.planner(snap).describeNested(snap, st)
	if err != nil {
		return nil, err // not r: a nil *plan.Route is no nil Primitive
	}
	return r, nil
}

// rebindable parses text again (planning rewrote the first tree) and reports whether it is a
// statement whose subqueries are bound: a SELECT, UPDATE, DELETE or INSERT.
func (s *Session) rebindable(text string) (ast.StmtNode, bool) {
	st, err := s.parseOne(text)
	if err != nil {
		return nil, false
	}
	switch st.(type) {
	case *ast.SelectStmt, *ast.UpdateStmt, *ast.DeleteStmt, *ast.InsertStmt:
		return st, true
	}
	return nil, false
}
