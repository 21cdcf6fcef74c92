package router

import (
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"

	"github.com/shardproxy/shardproxy/merge"
)

// Aggregates over DISTINCT values of a column that is not the shard key (COUNT(DISTINCT x),
// SUM(DISTINCT x), AVG(DISTINCT x)): a value may sit on several shards, so partial results do
// not add up. The shards group by the group keys and x (GROUP BY g, x, sorted), the proxy
// first combines each (g, x) across shards (one row per distinct value), then combines the
// rows of each group, where a distinct aggregate sees each x once. Both steps stream: the
// merge holds one row per level, whatever the number of values.

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
	if sh.sel.GroupBy == nil {
		sh.sel.GroupBy = &ast.GroupByClause{}
	}
	if len(lists) > 1 {
		sh.pushBranches(lists)
		return
	}
	for _, a := range lists[0] {
		sh.groupBy(a)
	}
	sh.plan.distinct = len(lists[0])
}

// groupBy adds e to the shards' GROUP BY and to the merge keys.
func (sh *scatterShape) groupBy(e ast.ExprNode) {
	sh.plan.order = append(sh.plan.order, sh.groupKey(e))
	sh.sel.GroupBy.Items = append(sh.sel.GroupBy.Items, &ast.ByItem{Expr: e, NullOrder: true})
}

// Several DISTINCT argument lists (COUNT(DISTINCT a), COUNT(DISTINCT b)) cannot share one
// pushed-down GROUP BY: grouping by (a, b) would send every pair, and b would not come
// sorted within a group. Each list gets a branch instead: the shards cross join their rows
// with a derived table of branch numbers 0..n-1 and group by (group keys, branch, the
// list's arguments in its own branch, NULL elsewhere). Within a group, a shard's rows come
// branch after branch, each sorted by its values, so both levels of the merge stream as
// for one list: level one combines a (group, branch, value) across shards, level two
// combines a group's rows, a DISTINCT aggregate reading only its own branch's rows and the
// other aggregates only branch 0's (whose rows partition the group: every row of the group
// is in each branch once). Each shard reads its rows once per list; the merge holds one
// row per level. The client's columns are computed over the same tables as before, so
// their definitions are unchanged.

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
	sh.sel.From.TableRefs = &ast.Join{Left: left, Right: &ast.TableSource{Source: branchNumbers(len(lists)), AsName: ast.NewCIStr(branchTable)}, Tp: ast.CrossJoin}
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
	sh.plan.distinct = n
	sh.plan.branched = true
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

// distinctMerge is the first level of the two-level merge: rows equal on the group keys and
// the DISTINCT arguments (keys) are combined into one. A DISTINCT aggregate's partial is the
// same on every shard for one value (COUNT 1 or 0, SUM and COUNT of that one value), so it
// is kept once (MAX); the others combine as usual, AVG through its partial SUM and COUNT.
// The second level (merge.Groups over the group keys alone, with aggs) then counts, sums
// and averages over distinct values.
func distinctMerge(rows merge.Stream, keys []merge.Key, plan []mergeAgg, aggs []merge.Agg, kinds []merge.Kind) merge.Stream {
	var first []merge.Agg
	for i, a := range aggs {
		keep := merge.Agg{Func: merge.AggMax, Weight: -1}
		switch {
		case plan[i].distinct && a.Func == merge.AggAvg:
			first = append(first, withCol(keep, a.Sum, kinds), withCol(keep, a.Count, kinds))
		case plan[i].distinct:
			first = append(first, withCol(keep, a.Col, kinds))
		case a.Func == merge.AggAvg:
			first = append(first,
				withCol(merge.Agg{Func: merge.AggSum, Weight: -1}, a.Sum, kinds),
				withCol(merge.Agg{Func: merge.AggCount, Weight: -1}, a.Count, kinds))
		default:
			first = append(first, a)
		}
	}
	return merge.Groups(rows, keys, first)
}

func withCol(a merge.Agg, col int, kinds []merge.Kind) merge.Agg {
	a.Col, a.Kind = col, kinds[col]
	return a
}

// emptyAggRow is the answer of an aggregate query without GROUP BY over no rows: COUNTs are
// 0, everything else NULL.
func emptyAggRow(width int, aggs []merge.Agg) [][]byte {
	row := make([][]byte, width)
	for _, a := range aggs {
		if a.Func == merge.AggCount {
			row[a.Col] = []byte("0")
		}
	}
	return row
}
