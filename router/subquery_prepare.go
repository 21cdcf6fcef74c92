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
// runs the result like a plain query, its rows encoded in the binary protocol.

// describeBound describes a prepared statement refused for its subqueries (see
// describeNested).
func (s *Session) describeBound(snap *rules.Snapshot, text string, refusal error) (plan.Primitive, error) {
	st, ok := s.rebindable(text)
	if !ok {
		return nil, refusal
	}
	r, err := s.planner(snap).DescribeNested(snap, st)
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
