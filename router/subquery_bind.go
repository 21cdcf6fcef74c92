package router

import (
	"context"
	"errors"
	"strconv"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Uncorrelated IN (SELECT ...) and EXISTS (SELECT ...) over sharded tables whose rows may be
// on several shards: the proxy runs each subquery first (a scatter query like any other) and
// binds its result into the outer statement, x IN (SELECT ...) as the list of its values,
// EXISTS as 1 or 0. The outer statement then routes like any other (by the values, when x
// is its shard key). At most server.max_subquery_values rows are read; a subquery that
// answers more fails the statement. A correlated subquery cannot run alone (it names the
// outer tables' columns) and stays refused.

// errNestedUnpinned marks the refusal of a statement whose subqueries' sharded tables are
// not pinned to one shard: binding the subqueries' values may make it answerable.
var errNestedUnpinned = errors.New("router: subquery over sharded tables not pinned to one shard")

// nestedRefusal is a refusal that errors.Is recognises as errNestedUnpinned.
type nestedRefusal struct{ err *sqlerr.Error }

func (n nestedRefusal) Error() string   { return n.err.Error() }
func (n nestedRefusal) Unwrap() []error { return []error{n.err, errNestedUnpinned} }

// erTooBigSelect is ER_TOO_BIG_SELECT (SQLSTATE 42000).
const erTooBigSelect = 1104

// bindSubqueries runs the uncorrelated IN and EXISTS subqueries of sel's WHERE and HAVING
// and replaces them with their values. It reports whether it replaced any.
func (s *Session) bindSubqueries(ctx context.Context, snap *rules.Snapshot, sel *ast.SelectStmt) (bool, error) {
	b := &subqueryBinder{s: s, ctx: ctx, snap: snap, max: snap.Server().MaxSubqueryValues}
	for _, e := range []*ast.ExprNode{&sel.Where, havingOf(sel)} {
		if e == nil || *e == nil {
			continue
		}
		n, _ := (*e).Accept(b)
		if b.err != nil {
			return false, b.err
		}
		*e = n.(ast.ExprNode)
	}
	return b.bound, nil
}

func havingOf(sel *ast.SelectStmt) *ast.ExprNode {
	if sel.Having == nil {
		return nil
	}
	return &sel.Having.Expr
}

type subqueryBinder struct {
	s     *Session
	ctx   context.Context
	snap  *rules.Snapshot
	max   int
	err   error
	bound bool
}

func (b *subqueryBinder) Enter(n ast.Node) (ast.Node, bool) {
	switch n.(type) {
	case *ast.PatternInExpr, *ast.ExistsSubqueryExpr:
		return n, true // replaced whole in Leave
	case *ast.SubqueryExpr:
		return n, true // a scalar subquery: left to the planner
	}
	return n, b.err != nil
}

func (b *subqueryBinder) Leave(n ast.Node) (ast.Node, bool) {
	if b.err != nil {
		return n, false
	}
	switch x := n.(type) {
	case *ast.PatternInExpr:
		sub, ok := x.Sel.(*ast.SubqueryExpr)
		if !ok {
			return n, true
		}
		out, err := b.bindIn(x, sub)
		if err != nil {
			b.err = err
			return n, false
		}
		b.bound = true
		return out, true
	case *ast.ExistsSubqueryExpr:
		sub, ok := x.Sel.(*ast.SubqueryExpr)
		if !ok {
			return n, true
		}
		inner, ok := sub.Query.(*ast.SelectStmt)
		if !ok {
			return n, true
		}
		if inner.Limit == nil {
			inner.Limit = &ast.Limit{Count: ast.NewValueExpr(uint64(1), "", "")}
		}
		res, err := b.run(sub.Query)
		if err != nil {
			b.err = err
			return n, false
		}
		b.bound = true
		return boolLiteral((len(res.rows) > 0) != x.Not), true
	}
	return n, true
}

func boolLiteral(v bool) ast.ExprNode {
	if v {
		return ast.NewValueExpr(int64(1), "", "")
	}
	return ast.NewValueExpr(int64(0), "", "")
}

// bindIn replaces x IN (SELECT ...) by x IN (values), or by 0/1 when the subquery is empty.
func (b *subqueryBinder) bindIn(x *ast.PatternInExpr, sub *ast.SubqueryExpr) (ast.ExprNode, error) {
	if inner, ok := sub.Query.(*ast.SelectStmt); ok && inner.Limit == nil {
		// Bound the rows read: one more than allowed tells that there are too many.
		inner.Limit = &ast.Limit{Count: ast.NewValueExpr(uint64(b.max)+1, "", "")}
	}
	res, err := b.run(sub.Query)
	if err != nil {
		return nil, err
	}
	want := 1
	if r, ok := x.Expr.(*ast.RowExpr); ok {
		want = len(r.Values)
	}
	if len(res.kinds) != want {
		return nil, sqlerr.New(1241, "Operand should contain %d column(s)", want)
	}
	if len(res.rows) == 0 {
		return boolLiteral(x.Not), nil // x IN (empty) is false, even for NULL x
	}
	list := make([]ast.ExprNode, len(res.rows))
	for i, row := range res.rows {
		vals := make([]ast.ExprNode, len(row))
		for j, v := range row {
			vals[j] = literalOf(v, res.kinds[j])
		}
		list[i] = vals[0]
		if want > 1 {
			list[i] = &ast.RowExpr{Values: vals}
		}
	}
	return &ast.PatternInExpr{Expr: x.Expr, List: list, Not: x.Not}, nil
}

// literalOf is a value of a column of kind k as an SQL literal of the same type.
func literalOf(v []byte, k merge.Kind) ast.ExprNode {
	if v == nil {
		return ast.NewValueExpr(nil, "", "")
	}
	switch k {
	case merge.KindSigned:
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return ast.NewValueExpr(n, "", "")
		}
	case merge.KindUnsigned:
		if n, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			return ast.NewValueExpr(n, "", "")
		}
	case merge.KindDecimal:
		d := new(test_driver.MyDecimal)
		if d.FromString(v) == nil {
			return ast.NewValueExpr(d, "", "")
		}
	case merge.KindFloat:
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			return ast.NewValueExpr(f, "", "")
		}
	}
	return ast.NewValueExpr(string(v), "", "")
}

// subqueryResult is a subquery's rows in the text protocol, with its columns' kinds.
type subqueryResult struct {
	kinds []merge.Kind
	rows  [][][]byte
}

// run runs a subquery on its own and reads its rows (at most max).
func (b *subqueryBinder) run(q ast.ResultSetNode) (*subqueryResult, error) {
	st, ok := q.(ast.StmtNode)
	if !ok {
		return nil, sqlerr.NotSupported("this kind of subquery over sharded tables")
	}
	text, err := restoreSQL(b.s.restoreFlags, b.s.lists, st)
	if err != nil {
		return nil, err
	}
	c := &rowCollector{max: b.max}
	err = b.s.execStmt(b.ctx, b.snap, st, text, false, c)
	if err == nil {
		err = c.err
	}
	if err != nil {
		if e, ok := sqlerr.As(err); ok && e.Code == 1054 {
			return nil, sqlerr.NotSupported("a correlated subquery over sharded tables whose rows may be on several shards (%s)", e.Message)
		}
		return nil, err
	}
	if c.tooMany {
		return nil, sqlerr.New(erTooBigSelect, "a subquery over several shards returned more than %d rows (server.max_subquery_values); narrow it or raise the limit", b.max)
	}
	return &subqueryResult{kinds: c.kinds, rows: c.rows}, nil
}

// rowCollector reads a text-protocol result from the packets written to it.
type rowCollector struct {
	max     int
	state   int // 0: column count, 1: definitions, 2: rows, 3: done
	cols    int
	kinds   []merge.Kind
	rows    [][][]byte
	tooMany bool
	err     error
}

func (c *rowCollector) WritePacket(p []byte) error {
	switch {
	case c.state == 3:
		return nil
	case wire.IsErr(p):
		c.err, c.state = wire.ParseErr(p), 3
		return nil
	case c.state == 0:
		n, m := wire.LenencInt(p)
		if m <= 0 || n > 4096 {
			c.err, c.state = sqlerr.New(sqlerr.ErUnknownError, "router: a malformed subquery result"), 3
			return nil
		}
		c.cols, c.state = int(n), 1
		if n == 0 {
			c.state = 3
		}
	case c.state == 1 && wire.IsEOF(p):
		c.state = 2
	case c.state == 1:
		d, ok := engine.ParseColDef(p)
		if !ok {
			c.err, c.state = sqlerr.New(sqlerr.ErUnknownError, "router: a malformed subquery column"), 3
			return nil
		}
		c.kinds = append(c.kinds, merge.KindOf(d.Type, d.Flags))
	case wire.IsEOF(p):
		c.state = 3
	default:
		if len(c.rows) >= c.max {
			c.tooMany = true
			return nil
		}
		row := make([][]byte, 0, c.cols)
		for range c.cols {
			v, isNull, n := wire.LenencString(p)
			if n <= 0 || n > len(p) {
				c.err, c.state = sqlerr.New(sqlerr.ErUnknownError, "router: a malformed subquery row"), 3
				return nil
			}
			if isNull {
				v = nil
			} else {
				v = append([]byte{}, v...)
			}
			row = append(row, v)
			p = p[n:]
		}
		c.rows = append(c.rows, row)
	}
	return nil
}

// planBound plans a SELECT refused for its subqueries (refusal) again, after binding the
// values of its IN and EXISTS subqueries. The statement is parsed again from text: planning
// rewrote the first tree.
func (s *Session) planBound(ctx context.Context, snap *rules.Snapshot, text string, refusal error) (plan, error) {
	st, err := s.parseOne(text)
	if err != nil {
		return plan{}, refusal
	}
	sel, ok := st.(*ast.SelectStmt)
	if !ok {
		return plan{}, refusal
	}
	bound, err := s.bindSubqueries(ctx, snap, sel)
	if err != nil {
		return plan{}, err
	}
	if !bound {
		return plan{}, refusal
	}
	sql, err := restoreSQL(s.restoreFlags, s.lists, sel)
	if err != nil {
		return plan{}, err
	}
	return s.plan(snap, sel, sql, nil)
}

// preparedSubqueries is the refusal of a prepared statement whose IN or EXISTS subqueries
// span shards: their values are bound when the statement runs as a query, but PREPARE must
// describe its columns and parameters before any subquery can run.
func preparedSubqueries(error) error {
	return sqlerr.NotSupported("subqueries over sharded tables on several shards in a prepared statement (as a plain query, or with its parameters interpolated, an uncorrelated IN or EXISTS subquery runs first and its values are bound)")
}
