package planner

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// scatterShape is the analysis of a scatter SELECT: what the shards run and how the proxy
// merges it. It rewrites sel in place (hidden columns, ORDER BY, LIMIT, HAVING), each edit
// logged in ed.
type scatterShape struct {
	sel     *ast.SelectStmt
	ed      *edits
	pl      *Planner
	params  []wire.Param
	fields  []*ast.SelectField // the client's fields
	hidden  []*ast.SelectField
	keyCols []colKey // shard key columns of the sharded tables
	// wildcard: the select list has a *, so client columns have no known position and
	// every key gets a hidden column.
	wildcard bool
	plan     plan.Merge
	// distinctTexts: the argument lists of the DISTINCT aggregates merged in two levels
	// (scatter_distinct.go); with several, list i is branch i.
	distinctTexts []string
}

// mergeableAggs are the aggregates whose per-shard results the proxy can combine.
var mergeableAggs = map[string]merge.AggFunc{
	ast.AggFuncCount: merge.AggCount, ast.AggFuncSum: merge.AggSum, ast.AggFuncMin: merge.AggMin,
	ast.AggFuncMax: merge.AggMax, ast.AggFuncAvg: merge.AggAvg,
}

func (pl *Planner) shapeScatter(ed *edits, sel *ast.SelectStmt, sharded []TableRef, params []wire.Param) (*scatterShape, error) {
	sh := &scatterShape{sel: sel, ed: ed, pl: pl, params: params, plan: plan.Merge{Count: -1}}
	for _, r := range sharded {
		sh.keyCols = append(sh.keyCols, colKey{r.alias, r.Table.Key})
	}
	switch {
	case sel.Kind != ast.SelectStmtKindSelect:
		return nil, sqlerr.NotSupported("TABLE/VALUES statements over sharded tables")
	case sel.SelectStmtOpts != nil && sel.SelectStmtOpts.CalcFoundRows:
		return nil, sqlerr.NotSupported("SQL_CALC_FOUND_ROWS on a query over several shards")
	case sel.SelectIntoOpt != nil:
		return nil, sqlerr.NotSupported("SELECT ... INTO on a query over several shards")
	case len(sel.WindowSpecs) > 0 || hasWindowFunc(sel):
		return nil, sqlerr.NotSupported("window functions on a query over several shards")
	case sel.GroupBy != nil && sel.GroupBy.Rollup:
		return nil, sqlerr.NotSupported("GROUP BY ... WITH ROLLUP on a query over several shards")
	}
	sh.fields = sel.Fields.Fields
	for _, f := range sh.fields {
		if f.WildCard != nil {
			sh.wildcard = true
		}
	}
	wildcard := sh.wildcard
	if err := sh.limit(); err != nil {
		return nil, err
	}
	grouped := sel.GroupBy != nil || hasAggregate(sel)
	switch {
	case grouped && !sh.groupedByKey():
		if wildcard {
			return nil, sqlerr.NotSupported("SELECT * with aggregates on a query over several shards")
		}
		if sel.Distinct {
			return nil, sqlerr.NotSupported("SELECT DISTINCT with GROUP BY or aggregates on a query over several shards")
		}
		return sh, sh.shapeGroups()
	case sel.Distinct && !sh.fieldsHaveKey():
		if wildcard {
			return nil, sqlerr.NotSupported("SELECT DISTINCT * on a query over several shards")
		}
		return sh, sh.shapeDistinct()
	}
	// Every group (or distinct row) lives on one shard: shards do all the work and the
	// proxy merges their sorted streams.
	return sh, sh.shapeOrdered()
}

// limit reads LIMIT [offset,] count and pushes LIMIT offset+count down.
func (sh *scatterShape) limit() error {
	l := sh.sel.Limit
	if l == nil {
		return nil
	}
	count, err := sh.LimitValue(l.Count)
	if err != nil {
		return err
	}
	var offset int64
	if l.Offset != nil {
		if offset, err = sh.LimitValue(l.Offset); err != nil {
			return err
		}
	}
	sh.plan.Offset, sh.plan.Count = offset, count
	return nil
}

// LimitValue is the value of a LIMIT count or offset: a literal or a bound ?.
func (sh *scatterShape) LimitValue(e ast.ExprNode) (int64, error) {
	v, ok, err := exprValue(e, sh.params)
	if err != nil {
		return 0, err
	}
	if ok && !v.IsInt && !v.Null {
		if _, perr := strconv.ParseUint(v.Str, 10, 64); perr == nil {
			return math.MaxInt64, nil // beyond int64: "all the rest" (LIMIT 5, 18446744073709551615)
		}
	}
	if !ok || !v.IsInt || v.Int < 0 {
		return 0, sqlerr.New(1210, "Incorrect arguments to LIMIT")
	}
	return v.Int, nil
}

// pushLimit sets the shards' LIMIT to offset+count (all rows the merge may need).
func (sh *scatterShape) pushLimit() {
	if sh.plan.Count < 0 || sh.plan.Count > math.MaxInt64-sh.plan.Offset {
		set(sh.ed, &sh.sel.Limit, nil) // no limit, or one no shard could reach
		return
	}
	set(sh.ed, &sh.sel.Limit, &ast.Limit{Count: ast.NewValueExpr(uint64(sh.plan.Offset+sh.plan.Count), "", "")})
}

func (sh *scatterShape) isKey(e ast.ExprNode) bool {
	c, ok := unparen(e).(*ast.ColumnNameExpr)
	if !ok {
		return false
	}
	for _, k := range sh.keyCols {
		if c.Name.Name.L == k.col && (c.Name.Table.L == "" || c.Name.Table.L == k.table) {
			return true
		}
	}
	return false
}

func unparen(e ast.ExprNode) ast.ExprNode {
	for {
		p, ok := e.(*ast.ParenthesesExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

// groupedByKey: GROUP BY names a shard key, so no group spans shards.
func (sh *scatterShape) groupedByKey() bool {
	if sh.sel.GroupBy == nil {
		return false
	}
	for _, it := range sh.sel.GroupBy.Items {
		if e := sh.resolve(it.Expr); e != nil && sh.isKey(e) {
			return true
		}
	}
	return false
}

func (sh *scatterShape) fieldsHaveKey() bool {
	for _, f := range sh.fields {
		if f.Expr != nil && sh.isKey(f.Expr) {
			return true
		}
	}
	return false
}

// resolve returns the expression an ORDER BY/GROUP BY item means: a position or a field
// alias stands for the field's expression.
func (sh *scatterShape) resolve(e ast.ExprNode) ast.ExprNode {
	switch x := e.(type) {
	case *ast.PositionExpr:
		if x.P == nil && x.N >= 1 && x.N <= len(sh.fields) {
			return sh.fields[x.N-1].Expr
		}
		return nil
	case *ast.ColumnNameExpr:
		if x.Name.Table.L == "" {
			for _, f := range sh.fields {
				if f.AsName.L != "" && f.AsName.L == x.Name.Name.L {
					return f.Expr
				}
			}
		}
	}
	return e
}

// fieldOf returns the client field computing e (same text), or -1.
func (sh *scatterShape) fieldOf(e ast.ExprNode) int {
	if e == nil {
		return -1
	}
	want := sh.pl.exprText(e)
	for i, f := range sh.fields {
		if f.Expr != nil && (f.Expr == e || sh.pl.exprText(f.Expr) == want) {
			return i
		}
	}
	return -1
}

// addHidden appends a hidden column computing e.
func (sh *scatterShape) addHidden(e ast.ExprNode) plan.ColRef {
	h := len(sh.hidden)
	sh.hidden = append(sh.hidden, &ast.SelectField{Expr: e, AsName: ast.NewCIStr(fmt.Sprintf("__sp_h%d", h))})
	return plan.HiddenCol(h)
}

func weightOf(e ast.ExprNode) ast.ExprNode {
	return &ast.FuncCallExpr{FnName: ast.NewCIStr("weight_string"), Args: []ast.ExprNode{e}}
}

// key builds a merge key for expression e: its column (a client field or a hidden one) and
// a hidden WEIGHT_STRING column (used when the column turns out to hold strings).
func (sh *scatterShape) key(e ast.ExprNode, desc bool) plan.MergeKey {
	k := plan.MergeKey{Desc: desc, Text: sh.pl.exprText(e)}
	if i := sh.fieldOf(e); i >= 0 && !sh.wildcard {
		k.Val = plan.ColRef(i)
	} else {
		k.Val = sh.addHidden(e)
	}
	k.Weight = sh.addHidden(weightOf(e))
	return k
}

// groupKey is key for an expression the shards group by. A string's weight is read
// through MIN when the expression is not a plain column: WEIGHT_STRING(e) alone names
// columns that are not grouped by themselves, which ONLY_FULL_GROUP_BY refuses.
func (sh *scatterShape) groupKey(e ast.ExprNode) plan.MergeKey {
	if _, ok := unparen(e).(*ast.ColumnNameExpr); ok {
		return sh.key(e, false)
	}
	k := plan.MergeKey{Text: sh.pl.exprText(e)}
	if i := sh.fieldOf(e); i >= 0 && !sh.wildcard {
		k.Val = plan.ColRef(i)
	} else {
		k.Val = sh.addHidden(e)
	}
	k.Weight = sh.addHidden(&ast.AggregateFuncExpr{F: ast.AggFuncMin, Args: []ast.ExprNode{weightOf(e)}})
	return k
}

// shapeOrdered: rows need no combining; ORDER BY becomes a k-way merge.
func (sh *scatterShape) shapeOrdered() error {
	if ob := sh.sel.OrderBy; ob != nil {
		for _, it := range ob.Items {
			e := sh.resolve(it.Expr)
			if e == nil {
				return sqlerr.New(1054, "Unknown column '%s' in 'order clause'", sh.pl.exprText(it.Expr))
			}
			sh.plan.Order = append(sh.plan.Order, sh.key(e, it.Desc))
		}
	}
	sh.pushLimit()
	return sh.finishFields()
}

// shapeDistinct: SELECT DISTINCT without the shard key: shards return their distinct rows
// sorted by (ORDER BY keys, then every field), and the proxy drops the repeats.
func (sh *scatterShape) shapeDistinct() error {
	if ob := sh.sel.OrderBy; ob != nil {
		for _, it := range ob.Items {
			e := sh.resolve(it.Expr)
			if sh.fieldOf(e) < 0 {
				return sqlerr.NotSupported("SELECT DISTINCT ordered by an expression that is not selected, on a query over several shards")
			}
			sh.plan.Order = append(sh.plan.Order, sh.key(e, it.Desc))
		}
	}
	for i, f := range sh.fields {
		if slices.ContainsFunc(sh.plan.Order, func(k plan.MergeKey) bool { return k.Val == plan.ColRef(i) }) {
			continue
		}
		sh.plan.Order = append(sh.plan.Order, sh.key(f.Expr, false))
	}
	set(sh.ed, &sh.sel.OrderBy, sh.orderByKeys(sh.plan.Order))
	sh.plan.Group = true
	// LIMIT offset+count still bounds each shard: a row among the first n distinct rows
	// overall is preceded on its shard only by smaller distinct rows.
	sh.pushLimit()
	return sh.finishFields()
}

// orderByKeys is an ORDER BY on the merge keys' columns: a client column by its position,
// a hidden one by its alias (valid in a shard's SELECT and in a UNION of them).
func (sh *scatterShape) orderByKeys(keys []plan.MergeKey) *ast.OrderByClause {
	ob := &ast.OrderByClause{}
	for _, k := range keys {
		var e ast.ExprNode = &ast.PositionExpr{N: int(k.Val) + 1}
		if k.Val < 0 {
			e = &ast.ColumnNameExpr{Name: &ast.ColumnName{Name: sh.hidden[-1-int(k.Val)].AsName}}
		}
		ob.Items = append(ob.Items, &ast.ByItem{Expr: e, Desc: k.Desc})
	}
	return ob
}

// shapeGroups: aggregates (GROUP BY without the shard key, or none): shards return partial
// aggregates per group sorted by the group keys; the proxy combines equal groups, then
// applies HAVING, ORDER BY and LIMIT.
func (sh *scatterShape) shapeGroups() error {
	sel := sh.sel
	sh.plan.Group = true
	if sel.GroupBy != nil {
		for _, it := range sel.GroupBy.Items {
			e := sh.resolve(it.Expr)
			if e == nil {
				return sqlerr.New(1054, "Unknown column '%s' in 'group statement'", sh.pl.exprText(it.Expr))
			}
			sh.plan.Order = append(sh.plan.Order, sh.groupKey(e))
		}
	}
	sh.pushDistinct()
	for i, f := range sh.fields {
		agg, ok := f.Expr.(*ast.AggregateFuncExpr)
		if !ok {
			if hasAggregateExpr(f.Expr) {
				if err := sh.computeField(i, f.Expr); err != nil {
					return err
				}
			}
			continue
		}
		a, err := sh.mergeAgg(agg, plan.ColRef(i))
		if err != nil {
			return err
		}
		sh.plan.Aggs = append(sh.plan.Aggs, a)
	}
	if sel.Having != nil {
		h, err := sh.compileHaving(sel.Having.Expr)
		if err != nil {
			return err
		}
		rowsOf(&sh.plan).having = h
		set(sh.ed, &sel.Having, nil)
	}
	if ob := sel.OrderBy; ob != nil {
		for _, it := range ob.Items {
			k, err := sh.postKey(it)
			if err != nil {
				return err
			}
			sh.plan.Post = append(sh.plan.Post, k)
		}
		if followsGroups(sh.plan.Post, sh.plan.Order) {
			sh.plan.Post = nil // the merged groups already come in this order: stream them
		}
	}
	var ob *ast.OrderByClause
	if len(sh.plan.Order) > 0 {
		ob = sh.orderByKeys(sh.plan.Order)
	}
	set(sh.ed, &sel.OrderBy, ob)
	set(sh.ed, &sel.Limit, nil)
	return sh.finishFields()
}

// plan.MergeAgg describes how an aggregate at col combines across shards.
func (sh *scatterShape) mergeAgg(agg *ast.AggregateFuncExpr, col plan.ColRef) (plan.MergeAgg, error) {
	fn, ok := mergeableAggs[strings.ToLower(agg.F)]
	text := sh.pl.exprText(agg)
	if !ok {
		return plan.MergeAgg{}, sqlerr.NotSupported("aggregate %s on a query over several shards (GROUP BY the shard key to run it on each shard)", text)
	}
	list := -1
	if fn != merge.AggMin && fn != merge.AggMax {
		list = sh.distinctList(agg)
	}
	distinct := list >= 0
	if agg.Distinct && fn != merge.AggMin && fn != merge.AggMax && !distinct {
		if !(fn == merge.AggCount && len(agg.Args) == 1 && sh.isKey(agg.Args[0])) {
			return plan.MergeAgg{}, sqlerr.NotSupported("%s on a query over several shards (only COUNT(DISTINCT shard key) adds up across shards)", text)
		}
	}
	a := plan.MergeAgg{Func: fn, Col: col, Weight: plan.NoCol, Sum: plan.NoCol, Count: plan.NoCol, Text: text, Distinct: distinct, Branch: max(list, 0)}
	switch fn {
	case merge.AggMin, merge.AggMax:
		a.Weight = sh.addHidden(weightOf(agg))
	case merge.AggAvg:
		arg := agg.Args[0]
		a.Sum = sh.addHidden(&ast.AggregateFuncExpr{F: ast.AggFuncSum, Args: []ast.ExprNode{arg}, Distinct: agg.Distinct})
		a.Count = sh.addHidden(&ast.AggregateFuncExpr{F: ast.AggFuncCount, Args: []ast.ExprNode{arg}, Distinct: agg.Distinct})
		if agg.Distinct && !distinct {
			return plan.MergeAgg{}, sqlerr.NotSupported("%s on a query over several shards", text)
		}
	}
	return a, nil
}

// aggColumn returns the column of aggregate agg, adding a hidden one (and its merge) when no
// client field computes it.
func (sh *scatterShape) aggColumn(agg *ast.AggregateFuncExpr) (plan.ColRef, plan.MergeAgg, error) {
	if i := sh.fieldOf(agg); i >= 0 {
		for _, a := range sh.plan.Aggs {
			if a.Col == plan.ColRef(i) {
				return a.Col, a, nil
			}
		}
	}
	text := sh.pl.exprText(agg)
	for _, a := range sh.plan.Aggs {
		if a.Col < 0 && !a.Internal && a.Text == text {
			return a.Col, a, nil // a hidden column computes it already
		}
	}
	col := sh.addHidden(agg)
	a, err := sh.mergeAgg(agg, col)
	if err != nil {
		return 0, plan.MergeAgg{}, err
	}
	sh.plan.Aggs = append(sh.plan.Aggs, a)
	return col, a, nil
}

// postKey is an ORDER BY item over merged groups.
func (sh *scatterShape) postKey(it *ast.ByItem) (plan.MergeKey, error) {
	e := sh.resolve(it.Expr)
	if e == nil {
		return plan.MergeKey{}, sqlerr.New(1054, "Unknown column '%s' in 'order clause'", sh.pl.exprText(it.Expr))
	}
	k := plan.MergeKey{Desc: it.Desc, Text: sh.pl.exprText(e), Weight: plan.NoCol}
	if agg, ok := e.(*ast.AggregateFuncExpr); ok {
		col, a, err := sh.aggColumn(agg)
		if err != nil {
			return plan.MergeKey{}, err
		}
		k.Val, k.Weight = col, a.Weight
		return k, nil
	}
	if i := sh.fieldOf(e); i >= 0 && hasAggregateExpr(e) {
		k.Val, k.Weight = plan.ColRef(i), sh.computedWeight(plan.ColRef(i))
		return k, nil
	}
	if hasAggregateExpr(e) {
		return sh.computedKey(k, e)
	}
	for _, g := range sh.plan.Order {
		if g.Text == k.Text {
			k.Val, k.Weight = g.Val, g.Weight
			return k, nil
		}
	}
	if i := sh.fieldOf(e); i >= 0 {
		k.Val = plan.ColRef(i)
		return k, nil
	}
	return plan.MergeKey{}, sqlerr.NotSupported("ORDER BY %s, neither grouped nor selected, on a query over several shards", k.Text)
}

// finishFields appends the hidden columns to the shards' select list.
func (sh *scatterShape) finishFields() error {
	sh.plan.Hidden = len(sh.hidden)
	if len(sh.hidden) > 0 {
		fields := slices.Clone(sh.fields)
		set(sh.ed, &sh.sel.Fields, &ast.FieldList{Fields: append(fields, sh.hidden...)})
	}
	return nil
}

// exprText is an expression as SQL, for comparing expressions and for EXPLAIN.
func (pl *Planner) exprText(e ast.Node) string {
	text, err := pl.Restore(e)
	if err != nil {
		return fmt.Sprintf("%T", e)
	}
	return text
}

func hasAggregate(sel *ast.SelectStmt) bool {
	for _, f := range sel.Fields.Fields {
		if f.Expr != nil && hasAggregateExpr(f.Expr) {
			return true
		}
	}
	return sel.Having != nil && hasAggregateExpr(sel.Having.Expr)
}

// hasAggregateExpr reports whether e contains an aggregate outside subqueries.
func hasAggregateExpr(e ast.Node) bool {
	f := &nodeFinder{match: func(n ast.Node) bool { _, ok := n.(*ast.AggregateFuncExpr); return ok }}
	e.Accept(f)
	return f.found
}

func hasWindowFunc(sel *ast.SelectStmt) bool {
	f := &nodeFinder{match: func(n ast.Node) bool { _, ok := n.(*ast.WindowFuncExpr); return ok }}
	sel.Fields.Accept(f)
	if sel.OrderBy != nil {
		sel.OrderBy.Accept(f)
	}
	return f.found
}

// nodeFinder looks for a node, not descending into subqueries.
type nodeFinder struct {
	match func(ast.Node) bool
	found bool
}

func (f *nodeFinder) Enter(n ast.Node) (ast.Node, bool) {
	if f.found {
		return n, true
	}
	if _, ok := n.(*ast.SubqueryExpr); ok {
		return n, true
	}
	if f.match(n) {
		f.found = true
		return n, true
	}
	return n, false
}

func (f *nodeFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }
