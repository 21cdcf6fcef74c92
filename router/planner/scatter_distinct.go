package planner

import (
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
)

// distinctLists finds the argument lists of the statement's DISTINCT aggregates that need
// the two-level merge. It returns nil when there are none, or when the only one is
// COUNT(DISTINCT shard key) (each shard's counts add up). Two or more different lists are
// merged through branches (pushBranches).
func (sh *scatterShape) distinctLists() [][]ast.ExprNode {
	c := &aggCollector{}
	for _, f := range sh.fields {
		if f.Expr != nil {
			f.Expr.Accept(c)
		}
	}
	if sh.sel.Having != nil {
		sh.sel.Having.Expr.Accept(c)
	}
	if sh.sel.OrderBy != nil {
		sh.sel.OrderBy.Accept(c)
	}
	var lists [][]ast.ExprNode
	var texts []string
	keyOnly := true
	for _, agg := range c.aggs {
		fn := strings.ToLower(agg.F)
		if !agg.Distinct || (fn != ast.AggFuncCount && fn != ast.AggFuncSum && fn != ast.AggFuncAvg) {
			continue
		}
		if !(fn == ast.AggFuncCount && len(agg.Args) == 1 && sh.isKey(agg.Args[0])) {
			keyOnly = false
		}
		if t := sh.argsText(agg); !slices.Contains(texts, t) {
			lists, texts = append(lists, agg.Args), append(texts, t)
		}
	}
	if keyOnly && len(lists) == 1 {
		return nil
	}
	return lists
}

func (sh *scatterShape) argsText(agg *ast.AggregateFuncExpr) string {
	parts := make([]string, len(agg.Args))
	for i, a := range agg.Args {
		parts[i] = sh.pl.exprText(a)
	}
	return strings.Join(parts, ", ")
}

// distinctList returns which of the statement's DISTINCT argument lists agg aggregates
// over, or -1.
func (sh *scatterShape) distinctList(agg *ast.AggregateFuncExpr) int {
	if !agg.Distinct {
		return -1
	}
	return slices.Index(sh.distinctTexts, sh.argsText(agg))
}

// pushDistinct adds the DISTINCT aggregates' arguments to the shards' GROUP BY and to the
// merge keys, after the group keys.
func (sh *scatterShape) pushDistinct() {
	lists := sh.distinctLists()
	if lists == nil {
		return
	}
	for _, l := range lists {
		sh.distinctTexts = append(sh.distinctTexts, sh.argsText(&ast.AggregateFuncExpr{Args: l}))
	}
	g := &ast.GroupByClause{} // the shards' GROUP BY: the client's items, then these
	if sh.sel.GroupBy != nil {
		*g = *sh.sel.GroupBy
		g.Items = slices.Clip(g.Items) // appends copy: the client's items stay as they are
	}
	set(sh.ed, &sh.sel.GroupBy, g)
	if len(lists) > 1 {
		sh.pushBranches(lists)
		return
	}
	for _, a := range lists[0] {
		sh.groupBy(a)
	}
	sh.plan.Distinct = len(lists[0])
}

// groupBy adds e to the shards' GROUP BY and to the merge keys.
func (sh *scatterShape) groupBy(e ast.ExprNode) {
	sh.plan.Order = append(sh.plan.Order, sh.groupKey(e))
	sh.sel.GroupBy.Items = append(sh.sel.GroupBy.Items, &ast.ByItem{Expr: e, NullOrder: true}) // the shards' own clause (pushDistinct)
}

// branchTable and branchCol name the derived table of branch numbers and its column.
const (
	branchTable = "__sp_br"
	branchCol   = "__sp_b"
)

// pushBranches rewrites the shards' statement for several DISTINCT argument lists.
func (sh *scatterShape) pushBranches(lists [][]ast.ExprNode) {
	from := sh.sel.From.TableRefs
	var left ast.ResultSetNode = from
	if from.Right == nil {
		left = from.Left
	}
	set(sh.ed, &sh.sel.From.TableRefs, &ast.Join{Left: left, Right: &ast.TableSource{Source: branchNumbers(len(lists)), AsName: ast.NewCIStr(branchTable)}, Tp: ast.CrossJoin})
	branch := &ast.ColumnNameExpr{Name: &ast.ColumnName{Table: ast.NewCIStr(branchTable), Name: ast.NewCIStr(branchCol)}}
	sh.groupBy(branch)
	n := 1
	for i, l := range lists {
		for _, a := range l {
			cond := &ast.BinaryOperationExpr{Op: opcode.EQ, L: branch, R: ast.NewValueExpr(int64(i), "", "")}
			sh.groupBy(&ast.FuncCallExpr{FnName: ast.NewCIStr(ast.If), Args: []ast.ExprNode{cond, a, ast.NewValueExpr(nil, "", "")}})
			n++
		}
	}
	sh.plan.Distinct = n
	sh.plan.Branched = true
}

// branchNumbers is (SELECT 0 AS __sp_b UNION ALL SELECT 1 ...) for n branches.
func branchNumbers(n int) *ast.SetOprStmt {
	list := &ast.SetOprSelectList{}
	for i := range n {
		sel := &ast.SelectStmt{Kind: ast.SelectStmtKindSelect, SelectStmtOpts: &ast.SelectStmtOpts{SQLCache: true}, Fields: &ast.FieldList{Fields: []*ast.SelectField{{Expr: ast.NewValueExpr(int64(i), "", "")}}}}
		if i == 0 {
			sel.Fields.Fields[0].AsName = ast.NewCIStr(branchCol)
		} else {
			all := ast.UnionAll
			sel.AfterSetOperator = &all
		}
		list.Selects = append(list.Selects, sel)
	}
	return &ast.SetOprStmt{SelectList: list}
}

// aggCollector gathers the aggregates of an expression, not descending into subqueries.
type aggCollector struct{ aggs []*ast.AggregateFuncExpr }

func (c *aggCollector) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.SubqueryExpr:
		return n, true
	case *ast.AggregateFuncExpr:
		c.aggs = append(c.aggs, x)
	}
	return n, false
}

func (c *aggCollector) Leave(n ast.Node) (ast.Node, bool) { return n, true }
