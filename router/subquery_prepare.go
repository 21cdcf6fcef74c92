package router

import (
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
)

// A prepared statement whose subqueries over sharded tables are not pinned to one shard
// (subquery_bind.go) is described at PREPARE from one shard: every sharded table, in the
// statement and in its subqueries, named as slot 0's physical table, the statement prepared
// on slot 0's shard to learn its parameters and columns. Each EXECUTE binds the parameters
// into the statement, runs its subqueries with them and binds their values, then plans and
// runs the result like a plain query, its rows encoded in the binary protocol. The tree is
// parsed once, at the first execution, and kept (prepare.go: keptTree).

// describeBound describes a prepared statement refused for its subqueries (see
// describeNested): a SELECT, UPDATE, DELETE or INSERT, whose subqueries are bound at each
// EXECUTE (planBound).
func (s *Session) describeBound(snap *rules.Snapshot, st ast.StmtNode, refusal error) (plan.Primitive, error) {
	switch st.(type) {
	case *ast.SelectStmt, *ast.UpdateStmt, *ast.DeleteStmt, *ast.InsertStmt:
	default:
		return nil, refusal
	}
	r, err := s.planner(snap).DescribeNested(snap, st)
	if err != nil {
		return nil, err // not r: a nil *plan.Route is no nil Primitive
	}
	return r, nil
}
