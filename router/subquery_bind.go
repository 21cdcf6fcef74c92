package router

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Uncorrelated subqueries over sharded tables whose rows may be on several shards: the
// proxy runs each subquery first (a scatter query like any other) and binds its result into
// the outer statement, x IN (SELECT ...) as the list of its values, EXISTS as 1 or 0, a
// scalar subquery as its value (subquery_scalar.go). The outer statement (a SELECT, UPDATE
// or DELETE) then routes like any other (by the values, when x is its shard key). At most
// server.max_subquery_values rows of an IN subquery are read; one that answers more fails
// the statement. A correlated subquery cannot run alone (it names the outer tables'
// columns) and stays refused. Prepared statements bind theirs at each EXECUTE (below).
//
// A prepared statement whose subqueries over sharded tables are not pinned to one shard
// (above) is described at PREPARE from one shard (router/planner: Planner.DescribeBound):
// every sharded table, in the statement and in its subqueries, named as slot 0's physical
// table, the statement prepared on slot 0's shard to learn its parameters and columns. Each
// EXECUTE binds the parameters into the statement, runs its subqueries with them and binds
// their values, then plans and runs the result like a plain query, its rows encoded in the
// binary protocol. The tree is parsed once, at the first execution, and kept (prepare.go:
// keptTree).

// errCorrelated marks the refusal of a subquery that cannot run alone: it names columns
// of the outer statement's tables.
var errCorrelated = errors.New("router: correlated subquery")

// correlatedRefusal is a refusal that errors.Is recognises as errCorrelated.
type correlatedRefusal struct{ err *sqlerr.Error }

func (c correlatedRefusal) Error() string   { return c.err.Error() }
func (c correlatedRefusal) Unwrap() []error { return []error{c.err, errCorrelated} }

// erTooBigSelect is ER_TOO_BIG_SELECT (SQLSTATE 42000).
const erTooBigSelect = 1104

// bindSubqueries runs the uncorrelated IN, EXISTS and scalar subqueries of st (a SELECT's
// select list, WHERE and HAVING; an UPDATE's SET and WHERE; a DELETE's WHERE) and replaces
// them with their values. It reports whether it replaced any, and returns the undo that
// puts st back as it was (once its plan is made: the plan keeps only text).
// A scalar subquery that cannot run alone (correlated) is left in place, its refusal
// returned as correlated: the caller reports it if the statement is still refused.
func (s *Session) bindSubqueries(ctx context.Context, snap *rules.Snapshot, st ast.StmtNode) (bound bool, correlated error, undo func(), err error) {
	b := &subqueryBinder{s: s, ctx: ctx, snap: snap, max: snap.Server().MaxSubqueryValues, primary: planner.IsWrite(st), swaps: planner.Swapper{}}
	var named []*ast.SelectField
	undo = func() {
		for _, f := range named {
			f.AsName = ast.CIStr{}
		}
		if len(b.swaps) == 0 {
			return
		}
		for _, site := range bindSites(st) {
			if site.expr != nil && *site.expr != nil {
				n, _ := (*site.expr).Accept(b.swaps)
				*site.expr = n.(ast.ExprNode)
			}
		}
	}
	for _, site := range bindSites(st) {
		if site.expr == nil || *site.expr == nil {
			continue
		}
		before := b.count
		b.mode = site.mode
		n, _ := (*site.expr).Accept(b)
		if b.err != nil {
			return false, nil, undo, b.err
		}
		*site.expr = n.(ast.ExprNode)
		if f := site.field; f != nil && b.count != before && f.AsName.O == "" {
			// MariaDB names the column after the expression as written, subquery included.
			f.AsName = ast.NewCIStr(strings.TrimSpace(f.Text()))
			named = append(named, f)
		}
	}
	return b.count > 0, b.correlated, undo, nil
}

// bindSite is an expression of a statement whose subqueries may be bound, and how.
type bindSite struct {
	expr  *ast.ExprNode
	mode  bindMode
	field *ast.SelectField // the select list field it is, if any
}

func bindSites(st ast.StmtNode) []bindSite {
	var sites []bindSite
	switch n := st.(type) {
	case *ast.SelectStmt:
		if n.Fields != nil {
			for _, f := range n.Fields.Fields {
				sites = append(sites, bindSite{expr: &f.Expr, mode: bindField, field: f})
			}
		}
		sites = append(sites, bindSite{expr: &n.Where, mode: bindValue}, bindSite{expr: havingOf(n), mode: bindPlain})
	case *ast.UpdateStmt:
		for _, a := range n.List {
			sites = append(sites, bindSite{expr: &a.Expr, mode: bindValue})
		}
		sites = append(sites, bindSite{expr: &n.Where, mode: bindValue})
	case *ast.DeleteStmt:
		sites = append(sites, bindSite{expr: &n.Where, mode: bindValue})
	}
	return sites
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
	mode  bindMode
	err   error
	count int // subqueries replaced by their values
	// correlated is the refusal of the first subquery left in place because it cannot
	// run alone.
	correlated error
	// primary: the subqueries feed a write, so they read the primary even under a
	// read/write split (as MariaDB reads what it changes).
	primary bool
	swaps   planner.Swapper // each value put in a subquery's place → the subquery
}

func (b *subqueryBinder) Enter(n ast.Node) (ast.Node, bool) {
	switch n.(type) {
	case *ast.PatternInExpr, *ast.ExistsSubqueryExpr:
		return n, true // replaced whole in Leave
	case *ast.SubqueryExpr:
		return n, true // a scalar subquery: replaced whole in Leave
	case *ast.CompareSubqueryExpr:
		return n, true // x > ANY (SELECT ...): left to the planner
	}
	return n, b.err != nil
}

func (b *subqueryBinder) Leave(n ast.Node) (ast.Node, bool) {
	if b.err != nil {
		return n, false
	}
	var out ast.ExprNode
	var err error
	switch x := n.(type) {
	case *ast.PatternInExpr:
		sub, ok := x.Sel.(*ast.SubqueryExpr)
		if !ok {
			return n, true
		}
		out, err = b.bindIn(x, sub)
	case *ast.ExistsSubqueryExpr:
		sub, ok := x.Sel.(*ast.SubqueryExpr)
		if !ok {
			return n, true
		}
		if _, ok := sub.Query.(*ast.SelectStmt); !ok {
			return n, true
		}
		out, err = b.bindExists(x, sub)
	case *ast.SubqueryExpr:
		out, err = b.bindScalar(x)
	default:
		return n, true
	}
	if errors.Is(err, errCorrelated) {
		// Left to the planner: pinned to the statement's shard, it runs there; if not,
		// the statement is refused for it (planBound).
		if b.correlated == nil {
			b.correlated = err
		}
		return n, true
	}
	if err != nil {
		b.err = err
		return n, false
	}
	b.count++
	b.swaps[out] = n // put back by bindSubqueries' undo
	return out, true
}

// limitRows bounds a SELECT without a LIMIT to n rows while it runs and returns the undo
// (the subquery goes back in its place when planBound is done).
func limitRows(q ast.ResultSetNode, n uint64) func() {
	sel, ok := q.(*ast.SelectStmt)
	if !ok || sel.Limit != nil {
		return func() {}
	}
	sel.Limit = &ast.Limit{Count: ast.NewValueExpr(n, "", "")}
	return func() { sel.Limit = nil }
}

// bindExists replaces [NOT] EXISTS (SELECT ...) by 1 or 0: one row tells.
func (b *subqueryBinder) bindExists(x *ast.ExistsSubqueryExpr, sub *ast.SubqueryExpr) (ast.ExprNode, error) {
	defer limitRows(sub.Query, 1)()
	res, err := b.run(sub.Query)
	if err != nil {
		return nil, err
	}
	return boolLiteral((len(res.rows) > 0) != x.Not), nil
}

// bindScalar replaces a scalar subquery by its value (see subquery_scalar.go). It reads at
// most two rows: more than one is an error wherever MariaDB evaluates the value.
func (b *subqueryBinder) bindScalar(sub *ast.SubqueryExpr) (ast.ExprNode, error) {
	defer limitRows(sub.Query, 2)()
	res, err := b.runMax(sub.Query, 2)
	if err != nil {
		return nil, err
	}
	return scalarValue(b.s.vars.parser, res, b.mode)
}

func boolLiteral(v bool) ast.ExprNode {
	if v {
		return ast.NewValueExpr(int64(1), "", "")
	}
	return ast.NewValueExpr(int64(0), "", "")
}

// bindIn replaces x IN (SELECT ...) by x IN (values), or by 0/1 when the subquery is empty.
func (b *subqueryBinder) bindIn(x *ast.PatternInExpr, sub *ast.SubqueryExpr) (ast.ExprNode, error) {
	if inner, ok := sub.Query.(*ast.SelectStmt); ok && inner.Limit != nil {
		return nil, sqlerr.New(sqlerr.ErNotSupportedYet, "This version of MariaDB doesn't yet support 'LIMIT & IN/ALL/ANY/SOME subquery'")
	}
	defer limitRows(sub.Query, uint64(b.max)+1)() // one more than allowed tells there are too many
	res, err := b.run(sub.Query)
	if err != nil {
		return nil, err
	}
	want := 1
	if r, ok := x.Expr.(*ast.RowExpr); ok {
		want = len(r.Values)
	}
	if len(res.cols) != want {
		return nil, sqlerr.New(1241, "Operand should contain %d column(s)", want)
	}
	if len(res.rows) == 0 {
		return boolLiteral(x.Not), nil // x IN (empty) is false, even for NULL x
	}
	list := make([]ast.ExprNode, len(res.rows))
	for i, row := range res.rows {
		vals := make([]ast.ExprNode, len(row))
		for j, v := range row {
			vals[j] = literalOf(v, res.cols[j].kind())
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

// subqueryResult is a subquery's rows in the text protocol, with its columns.
type subqueryResult struct {
	cols    []subqueryCol
	rows    [][][]byte
	tooMany bool // there were more rows than were read
}

// run runs a subquery on its own and reads its rows (at most server.max_subquery_values).
func (b *subqueryBinder) run(q ast.ResultSetNode) (*subqueryResult, error) {
	res, err := b.runMax(q, b.max)
	if err == nil && res.tooMany {
		err = sqlerr.New(erTooBigSelect, "a subquery over several shards returned more than %d rows (server.max_subquery_values); narrow it or raise the limit", b.max)
	}
	return res, err
}

// runMax runs a subquery on its own and reads at most limit of its rows (more are noted).
func (b *subqueryBinder) runMax(q ast.ResultSetNode, limit int) (*subqueryResult, error) {
	st, ok := q.(ast.StmtNode)
	if !ok {
		return nil, sqlerr.NotSupported("this kind of subquery over sharded tables")
	}
	text, err := planner.RestoreSQL(b.s.vars.restoreFlags, b.s.lists, st)
	if err != nil {
		return nil, err
	}
	if b.primary {
		text = "/*+ PRIMARY */ " + text // readsplit.go's hint
	}
	c := &rowCollector{max: limit}
	err = b.s.execStmt(b.ctx, b.snap, st, text, false, c)
	if err == nil {
		err = c.err
	}
	if err != nil {
		if e, ok := sqlerr.As(err); ok && e.Code == 1054 {
			return nil, correlatedRefusal{sqlerr.NotSupported("a correlated subquery over sharded tables whose rows may be on several shards (%s)", e.Message)}
		}
		return nil, err
	}
	return &subqueryResult{cols: c.defs, rows: c.rows, tooMany: c.tooMany}, nil
}

// rowCollector reads a text-protocol result from the packets written to it.
type rowCollector struct {
	max     int
	t       wire.ResultTracker
	done    bool // the first result set ended (or failed): later packets are ignored
	defs    []subqueryCol
	rows    [][][]byte
	tooMany bool
	err     error
}

// maxSubqueryColumns bounds the columns of a subquery's result the proxy reads.
const maxSubqueryColumns = 4096

// WritePacket reads the next packet of the subquery's result.
func (c *rowCollector) WritePacket(p []byte) error {
	if c.done {
		return nil
	}
	switch c.t.Next(p) {
	case wire.PartErr:
		c.err, c.done = wire.ParseErr(p), true
	case wire.PartOK: // no result set: no columns, no rows
		c.done = true
	case wire.PartOther:
		c.fail("router: a malformed subquery result")
	case wire.PartColumnCount:
		if c.t.Columns() > maxSubqueryColumns {
			c.fail("router: a malformed subquery result")
		}
	case wire.PartColumnDef:
		_, ok := wire.ParseColDef(p)
		col, ok2 := parseSubqueryCol(p)
		if !ok || !ok2 {
			c.fail("router: a malformed subquery column")
			return nil
		}
		c.defs = append(c.defs, col)
	case wire.PartEnd:
		c.done = true
	case wire.PartRow:
		c.row(p)
	}
	return nil
}

// fail ends the result with a malformed-result error.
func (c *rowCollector) fail(msg string) {
	c.err, c.done = sqlerr.New(sqlerr.ErUnknownError, "%s", msg), true
}

// row keeps a row (a copy of its values), or notes one beyond max.
func (c *rowCollector) row(p []byte) {
	if len(c.rows) >= c.max {
		c.tooMany = true
		return
	}
	row := make([][]byte, 0, c.t.Columns())
	for range c.t.Columns() {
		v, isNull, n := wire.LenencString(p)
		if n <= 0 || n > len(p) {
			c.fail("router: a malformed subquery row")
			return
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

// planBound plans st, a statement refused for its subqueries (refusal), again after binding
// the values of its IN, EXISTS and scalar subqueries into it (of an INSERT ... SELECT, its
// rows): a SELECT, UPDATE or DELETE is put back as it was before planBound returns (the
// plan holds text only); an INSERT ... SELECT keeps its rows (its tree is not reused).
// A prepared statement's values are in st already.
func (s *Session) planBound(ctx context.Context, snap *rules.Snapshot, st ast.StmtNode, refusal error) (plan.Primitive, error) {
	switch st := st.(type) {
	case *ast.SelectStmt, *ast.UpdateStmt, *ast.DeleteStmt:
	case *ast.InsertStmt:
		return s.planInsertSelect(ctx, snap, st, refusal) // subquery_insert.go
	default:
		return nil, refusal
	}
	bound, correlated, undo, err := s.bindSubqueries(ctx, snap, st)
	defer undo()
	if correlated != nil {
		refusal = correlated // the reason the statement cannot run
	}
	if err != nil {
		return nil, err
	}
	if !bound {
		return nil, refusal
	}
	sql, err := planner.RestoreSQL(s.vars.restoreFlags, s.lists, st)
	if err != nil {
		return nil, err
	}
	p, err := s.plan(snap, st, sql, nil)
	if errors.Is(err, planner.ErrNestedUnpinned) && correlated != nil {
		return nil, correlated
	}
	return p, err
}
