package router

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// Aggregates over DISTINCT values of a column that is not the shard key (COUNT(DISTINCT x),
// SUM(DISTINCT x), AVG(DISTINCT x)): a value may sit on several shards, so partial results do
// not add up. The shards group by the group keys and x (GROUP BY g, x, sorted), the proxy
// first combines each (g, x) across shards (one row per distinct value), then combines the
// rows of each group, where a distinct aggregate sees each x once. Both steps stream: the
// merge holds one row per level, whatever the number of values.

// distinctArgs finds the arguments of the statement's DISTINCT aggregates that need the
// two-level merge. It returns nil when there are none, or when the only ones are
// COUNT(DISTINCT shard key) (each shard's counts add up). Aggregates over different DISTINCT
// arguments cannot share one pushed-down GROUP BY and are refused.
func (sh *scatterShape) distinctArgs() ([]ast.ExprNode, error) {
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
	var args []ast.ExprNode
	text, keyOnly := "", true
	for _, agg := range c.aggs {
		fn := strings.ToLower(agg.F)
		if !agg.Distinct || (fn != ast.AggFuncCount && fn != ast.AggFuncSum && fn != ast.AggFuncAvg) {
			continue
		}
		t := sh.argsText(agg)
		if args != nil && t != text {
			return nil, sqlerr.NotSupported("aggregates over DISTINCT %s and DISTINCT %s in one query over several shards", text, t)
		}
		args, text = agg.Args, t
		if !(fn == ast.AggFuncCount && len(agg.Args) == 1 && sh.isKey(agg.Args[0])) {
			keyOnly = false
		}
	}
	if keyOnly {
		return nil, nil
	}
	return args, nil
}

func (sh *scatterShape) argsText(agg *ast.AggregateFuncExpr) string {
	parts := make([]string, len(agg.Args))
	for i, a := range agg.Args {
		parts[i] = sh.pl.exprText(a)
	}
	return strings.Join(parts, ", ")
}

// pushDistinct adds the DISTINCT aggregates' arguments to the shards' GROUP BY and to the
// merge keys, after the group keys.
func (sh *scatterShape) pushDistinct() error {
	args, err := sh.distinctArgs()
	if err != nil || args == nil {
		return err
	}
	if sh.sel.GroupBy == nil {
		sh.sel.GroupBy = &ast.GroupByClause{}
	}
	for _, a := range args {
		sh.plan.order = append(sh.plan.order, sh.key(a, false))
		sh.sel.GroupBy.Items = append(sh.sel.GroupBy.Items, &ast.ByItem{Expr: a, NullOrder: true})
	}
	sh.plan.distinct = len(args)
	sh.distinctText = sh.argsText(&ast.AggregateFuncExpr{Args: args})
	return nil
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
