package router

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// errScatter marks a SELECT whose rows may be on several shards: planScatter takes over.
var errScatter = sqlerr.New(sqlerr.ErUnknownError, "router: the statement needs several shards")

// scatterPlan is a SELECT sent to several shards whose results the proxy merges.
type scatterPlan struct {
	targets []scatterTarget
	merge   mergePlan
}

// scatterTarget is what one shard runs.
type scatterTarget struct {
	shard *rules.Shard
	slots []int
	sql   string
}

// colRef names a column of the shards' results: >= 0 is a column the client sees; < 0 is
// hidden column -1-h, counted from the first hidden column (hidden columns come last).
type colRef int

func hiddenCol(h int) colRef { return colRef(-1 - h) }

// noCol is a colRef naming no column.
const noCol colRef = math.MinInt32

// mergeKey is a sort or group key: the value's column and, for strings, the column holding
// its WEIGHT_STRING (the collation's sort key).
type mergeKey struct {
	val, weight colRef
	desc        bool
	text        string // for EXPLAIN
}

type mergeAgg struct {
	fn          merge.AggFunc
	col, weight colRef
	sum, count  colRef // AVG's partial SUM and COUNT
	text        string
}

// mergePlan is how the shards' rows become the client's.
type mergePlan struct {
	hidden int
	// order: each shard's rows come sorted by these keys; the proxy merges them in order.
	// Without keys, rows are interleaved as they come.
	order []mergeKey
	// group: rows equal on order are combined (aggregates merged; DISTINCT keeps one).
	group  bool
	aggs   []mergeAgg
	having *havingExpr
	post   []mergeKey // sort after grouping (ORDER BY over merged groups)
	offset int64
	count  int64 // -1: no limit
}

// describe lists what the plan does, one line per step: each shard's statement, then the
// merge steps. EXPLAIN SHARDS and the golden tests show it.
func (sp *scatterPlan) describe() []string {
	var out []string
	for _, t := range sp.targets {
		out = append(out, fmt.Sprintf("shard %s: %s", t.shard.Name, t.sql))
	}
	for _, st := range sp.merge.steps() {
		out = append(out, "merge: "+st)
	}
	return out
}

// steps describes the merge for EXPLAIN.
func (m *mergePlan) steps() []string {
	var out []string
	keys := func(ks []mergeKey) string {
		var b []string
		for _, k := range ks {
			d := "ASC"
			if k.desc {
				d = "DESC"
			}
			b = append(b, k.text+" "+d)
		}
		return strings.Join(b, ", ")
	}
	switch {
	case m.group && len(m.aggs) == 0 && len(m.order) > 0:
		out = append(out, "merge sorted streams by "+keys(m.order)+", keep distinct rows")
	case m.group:
		var a []string
		for _, g := range m.aggs {
			a = append(a, g.text)
		}
		s := "merge partial aggregates " + strings.Join(a, ", ")
		if len(m.order) > 0 {
			s = "merge sorted streams by " + keys(m.order) + ", " + s + " per group"
		}
		out = append(out, s)
	case len(m.order) > 0:
		out = append(out, "merge sorted streams by "+keys(m.order))
	default:
		out = append(out, "concatenate streams")
	}
	if m.having != nil {
		out = append(out, "filter HAVING "+m.having.text)
	}
	if len(m.post) > 0 {
		out = append(out, "sort merged rows by "+keys(m.post))
	}
	if m.offset > 0 || m.count >= 0 {
		out = append(out, fmt.Sprintf("limit offset %d count %d", m.offset, m.count))
	}
	if m.hidden > 0 {
		out = append(out, fmt.Sprintf("drop %d hidden columns", m.hidden))
	}
	return out
}

// scatterRefs checks the sharded tables of a scatter SELECT and returns the slots it needs:
// all of them unless a key condition narrows them. Tables sharded together must be joined
// on their shard keys, so that each shard's rows join only with rows of the same shard.
func (s *Session) scatterSlots(sel *ast.SelectStmt, sharded []tableRef, params []wire.Param) ([]int, error) {
	first := sharded[0].table
	for _, r := range sharded[1:] {
		if r.table.Scheme != first.Scheme {
			return nil, sqlerr.NotSupported("a join of %s and %s, sharded by different schemes, whose rows may be on every shard", first.Name, r.table.Name)
		}
	}
	if len(sharded) > 1 {
		eq := newColClasses()
		eq.addConds(sel.Where)
		if sel.From != nil {
			eq.addJoin(sel.From.TableRefs)
		}
		root := eq.find(colKey{sharded[0].alias, sharded[0].table.Key})
		for _, r := range sharded[1:] {
			if eq.find(colKey{r.alias, r.table.Key}) != root {
				return nil, sqlerr.NotSupported("a join of sharded tables %s and %s not on their shard keys (%s.%s = %s.%s): rows would have to meet across shards",
					first.Name, r.table.Name, sharded[0].alias, first.Key, r.alias, r.table.Key)
			}
		}
	}
	var slots []int
	for _, r := range sharded {
		vals, ok, err := keyValues(sel.Where, r, params)
		if err != nil {
			return nil, err
		}
		var got []int
		if ok {
			if got, err = slotsOf(r.table, vals); err != nil {
				return nil, err
			}
		} else if got, ok, err = rangeSlots(sel.Where, r, params); err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		slices.Sort(got)
		if slots == nil {
			slots = got
		} else {
			slots = intersect(slots, got)
		}
	}
	if slots == nil {
		slots = make([]int, first.Scheme.Func.Slots())
		for i := range slots {
			slots[i] = i
		}
	}
	return slots, nil
}

func intersect(a, b []int) []int {
	out := []int{}
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// colKey is a column qualified by its table's alias.
type colKey struct{ table, col string }

// colClasses groups columns known equal by the statement's conditions (union-find).
type colClasses struct{ parent map[colKey]colKey }

func newColClasses() *colClasses { return &colClasses{parent: map[colKey]colKey{}} }

func (c *colClasses) find(k colKey) colKey {
	for {
		p, ok := c.parent[k]
		if !ok || p == k {
			return k
		}
		k = p
	}
}

func (c *colClasses) union(a, b colKey) { c.parent[c.find(a)] = c.find(b) }

// addConds records col = col conjuncts.
func (c *colClasses) addConds(e ast.ExprNode) {
	switch e := e.(type) {
	case *ast.ParenthesesExpr:
		c.addConds(e.Expr)
	case *ast.BinaryOperationExpr:
		switch e.Op {
		case opcode.LogicAnd:
			c.addConds(e.L)
			c.addConds(e.R)
		case opcode.EQ:
			l, ok1 := e.L.(*ast.ColumnNameExpr)
			r, ok2 := e.R.(*ast.ColumnNameExpr)
			if ok1 && ok2 {
				c.union(colKey{l.Name.Table.L, l.Name.Name.L}, colKey{r.Name.Table.L, r.Name.Name.L})
			}
		}
	}
}

func (c *colClasses) addJoin(n ast.ResultSetNode) {
	j, ok := n.(*ast.Join)
	if !ok {
		return
	}
	c.addJoin(j.Left)
	if j.Right != nil {
		c.addJoin(j.Right)
	}
	if j.On != nil {
		c.addConds(j.On.Expr)
	}
	for _, u := range j.Using {
		l, r := joinSideAlias(j.Left), joinSideAlias(j.Right)
		if l != "" && r != "" {
			c.union(colKey{l, u.Name.L}, colKey{r, u.Name.L})
		}
	}
}

func joinSideAlias(n ast.ResultSetNode) string {
	if ts, ok := n.(*ast.TableSource); ok {
		if ts.AsName.L != "" {
			return ts.AsName.L
		}
		if tn, ok := ts.Source.(*ast.TableName); ok {
			return tn.Name.L
		}
	}
	return ""
}

// scatterShape is the analysis of a scatter SELECT: what the shards run and how the proxy
// merges it. It rewrites sel in place (hidden columns, ORDER BY, LIMIT, HAVING).
type scatterShape struct {
	sel     *ast.SelectStmt
	s       *Session
	params  []wire.Param
	fields  []*ast.SelectField // the client's fields
	hidden  []*ast.SelectField
	keyCols []colKey // shard key columns of the sharded tables
	// wildcard: the select list has a *, so client columns have no known position and
	// every key gets a hidden column.
	wildcard bool
	plan     mergePlan
}

// aggregateNames are the aggregates whose per-shard results the proxy can combine.
var mergeableAggs = map[string]merge.AggFunc{
	ast.AggFuncCount: merge.AggCount, ast.AggFuncSum: merge.AggSum, ast.AggFuncMin: merge.AggMin,
	ast.AggFuncMax: merge.AggMax, ast.AggFuncAvg: merge.AggAvg,
}

func (s *Session) shapeScatter(sel *ast.SelectStmt, sharded []tableRef, params []wire.Param) (*scatterShape, error) {
	sh := &scatterShape{sel: sel, s: s, params: params, plan: mergePlan{count: -1}}
	for _, r := range sharded {
		sh.keyCols = append(sh.keyCols, colKey{r.alias, r.table.Key})
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
	count, err := sh.limitValue(l.Count)
	if err != nil {
		return err
	}
	var offset int64
	if l.Offset != nil {
		if offset, err = sh.limitValue(l.Offset); err != nil {
			return err
		}
	}
	sh.plan.offset, sh.plan.count = offset, count
	return nil
}

func (sh *scatterShape) limitValue(e ast.ExprNode) (int64, error) {
	v, ok, err := exprValue(e, sh.params)
	if err != nil {
		return 0, err
	}
	if !ok || !v.IsInt || v.Int < 0 {
		return 0, sqlerr.New(1210, "Incorrect arguments to LIMIT")
	}
	return v.Int, nil
}

// pushLimit sets the shards' LIMIT to offset+count (all rows the merge may need).
func (sh *scatterShape) pushLimit() {
	if sh.plan.count < 0 {
		sh.sel.Limit = nil
		return
	}
	sh.sel.Limit = &ast.Limit{Count: ast.NewValueExpr(uint64(sh.plan.offset+sh.plan.count), "", "")}
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
	want := sh.s.exprText(e)
	for i, f := range sh.fields {
		if f.Expr != nil && (f.Expr == e || sh.s.exprText(f.Expr) == want) {
			return i
		}
	}
	return -1
}

// addHidden appends a hidden column computing e.
func (sh *scatterShape) addHidden(e ast.ExprNode) colRef {
	h := len(sh.hidden)
	sh.hidden = append(sh.hidden, &ast.SelectField{Expr: e, AsName: ast.NewCIStr(fmt.Sprintf("__sp_h%d", h))})
	return hiddenCol(h)
}

func weightOf(e ast.ExprNode) ast.ExprNode {
	return &ast.FuncCallExpr{FnName: ast.NewCIStr("weight_string"), Args: []ast.ExprNode{e}}
}

// key builds a merge key for expression e: its column (a client field or a hidden one) and
// a hidden WEIGHT_STRING column (used when the column turns out to hold strings).
func (sh *scatterShape) key(e ast.ExprNode, desc bool) mergeKey {
	k := mergeKey{desc: desc, text: sh.s.exprText(e)}
	if i := sh.fieldOf(e); i >= 0 && !sh.wildcard {
		k.val = colRef(i)
	} else {
		k.val = sh.addHidden(e)
	}
	k.weight = sh.addHidden(weightOf(e))
	return k
}

// shapeOrdered: rows need no combining; ORDER BY becomes a k-way merge.
func (sh *scatterShape) shapeOrdered() error {
	if ob := sh.sel.OrderBy; ob != nil {
		for _, it := range ob.Items {
			e := sh.resolve(it.Expr)
			if e == nil {
				return sqlerr.New(1054, "Unknown column '%s' in 'order clause'", sh.s.exprText(it.Expr))
			}
			sh.plan.order = append(sh.plan.order, sh.key(e, it.Desc))
		}
	}
	sh.pushLimit()
	return sh.finishFields()
}

// shapeDistinct: SELECT DISTINCT without the shard key: shards return their distinct rows
// sorted by (ORDER BY keys, then every field), and the proxy drops the repeats.
func (sh *scatterShape) shapeDistinct() error {
	var items []*ast.ByItem
	if ob := sh.sel.OrderBy; ob != nil {
		for _, it := range ob.Items {
			e := sh.resolve(it.Expr)
			if sh.fieldOf(e) < 0 {
				return sqlerr.NotSupported("SELECT DISTINCT ordered by an expression that is not selected, on a query over several shards")
			}
			items = append(items, &ast.ByItem{Expr: e, Desc: it.Desc})
			sh.plan.order = append(sh.plan.order, sh.key(e, it.Desc))
		}
	}
	for i, f := range sh.fields {
		if slices.ContainsFunc(sh.plan.order, func(k mergeKey) bool { return k.val == colRef(i) }) {
			continue
		}
		items = append(items, &ast.ByItem{Expr: f.Expr})
		sh.plan.order = append(sh.plan.order, sh.key(f.Expr, false))
	}
	sh.sel.OrderBy = sh.orderByKeys(sh.plan.order)
	sh.plan.group = true
	// LIMIT offset+count still bounds each shard: a row among the first n distinct rows
	// overall is preceded on its shard only by smaller distinct rows.
	sh.pushLimit()
	return sh.finishFields()
}

// orderByKeys is an ORDER BY on the merge keys' columns: a client column by its position,
// a hidden one by its alias (valid in a shard's SELECT and in a UNION of them).
func (sh *scatterShape) orderByKeys(keys []mergeKey) *ast.OrderByClause {
	ob := &ast.OrderByClause{}
	for _, k := range keys {
		var e ast.ExprNode = &ast.PositionExpr{N: int(k.val) + 1}
		if k.val < 0 {
			e = &ast.ColumnNameExpr{Name: &ast.ColumnName{Name: sh.hidden[-1-int(k.val)].AsName}}
		}
		ob.Items = append(ob.Items, &ast.ByItem{Expr: e, Desc: k.desc})
	}
	return ob
}

// shapeGroups: aggregates (GROUP BY without the shard key, or none): shards return partial
// aggregates per group sorted by the group keys; the proxy combines equal groups, then
// applies HAVING, ORDER BY and LIMIT.
func (sh *scatterShape) shapeGroups() error {
	sel := sh.sel
	sh.plan.group = true
	if sel.GroupBy != nil {
		for _, it := range sel.GroupBy.Items {
			e := sh.resolve(it.Expr)
			if e == nil {
				return sqlerr.New(1054, "Unknown column '%s' in 'group statement'", sh.s.exprText(it.Expr))
			}
			sh.plan.order = append(sh.plan.order, sh.key(e, false))
		}
	}
	for i, f := range sh.fields {
		agg, ok := f.Expr.(*ast.AggregateFuncExpr)
		if !ok {
			if hasAggregateExpr(f.Expr) {
				return sqlerr.NotSupported("expression %s over aggregates on a query over several shards (select the aggregates and compute it in the client)", sh.s.exprText(f.Expr))
			}
			continue
		}
		a, err := sh.mergeAgg(agg, colRef(i))
		if err != nil {
			return err
		}
		sh.plan.aggs = append(sh.plan.aggs, a)
	}
	if sel.Having != nil {
		h, err := sh.compileHaving(sel.Having.Expr)
		if err != nil {
			return err
		}
		sh.plan.having = h
		sel.Having = nil
	}
	if ob := sel.OrderBy; ob != nil {
		for _, it := range ob.Items {
			k, err := sh.postKey(it)
			if err != nil {
				return err
			}
			sh.plan.post = append(sh.plan.post, k)
		}
	}
	sel.OrderBy = nil
	if len(sh.plan.order) > 0 {
		sel.OrderBy = sh.orderByKeys(sh.plan.order)
	}
	sel.Limit = nil
	return sh.finishFields()
}

// mergeAgg describes how an aggregate at col combines across shards.
func (sh *scatterShape) mergeAgg(agg *ast.AggregateFuncExpr, col colRef) (mergeAgg, error) {
	fn, ok := mergeableAggs[strings.ToLower(agg.F)]
	text := sh.s.exprText(agg)
	if !ok {
		return mergeAgg{}, sqlerr.NotSupported("aggregate %s on a query over several shards (GROUP BY the shard key to run it on each shard)", text)
	}
	if agg.Distinct && fn != merge.AggMin && fn != merge.AggMax {
		if !(fn == merge.AggCount && len(agg.Args) == 1 && sh.isKey(agg.Args[0])) {
			return mergeAgg{}, sqlerr.NotSupported("%s on a query over several shards (only COUNT(DISTINCT shard key) adds up across shards)", text)
		}
	}
	a := mergeAgg{fn: fn, col: col, weight: noCol, sum: noCol, count: noCol, text: text}
	switch fn {
	case merge.AggMin, merge.AggMax:
		a.weight = sh.addHidden(weightOf(agg))
	case merge.AggAvg:
		arg := agg.Args[0]
		a.sum = sh.addHidden(&ast.AggregateFuncExpr{F: ast.AggFuncSum, Args: []ast.ExprNode{arg}, Distinct: agg.Distinct})
		a.count = sh.addHidden(&ast.AggregateFuncExpr{F: ast.AggFuncCount, Args: []ast.ExprNode{arg}, Distinct: agg.Distinct})
		if agg.Distinct {
			return mergeAgg{}, sqlerr.NotSupported("%s on a query over several shards", text)
		}
	}
	return a, nil
}

// aggColumn returns the column of aggregate agg, adding a hidden one (and its merge) when no
// client field computes it.
func (sh *scatterShape) aggColumn(agg *ast.AggregateFuncExpr) (colRef, mergeAgg, error) {
	if i := sh.fieldOf(agg); i >= 0 {
		for _, a := range sh.plan.aggs {
			if a.col == colRef(i) {
				return a.col, a, nil
			}
		}
	}
	col := sh.addHidden(agg)
	a, err := sh.mergeAgg(agg, col)
	if err != nil {
		return 0, mergeAgg{}, err
	}
	sh.plan.aggs = append(sh.plan.aggs, a)
	return col, a, nil
}

// postKey is an ORDER BY item over merged groups.
func (sh *scatterShape) postKey(it *ast.ByItem) (mergeKey, error) {
	e := sh.resolve(it.Expr)
	if e == nil {
		return mergeKey{}, sqlerr.New(1054, "Unknown column '%s' in 'order clause'", sh.s.exprText(it.Expr))
	}
	k := mergeKey{desc: it.Desc, text: sh.s.exprText(e), weight: noCol}
	if agg, ok := e.(*ast.AggregateFuncExpr); ok {
		col, a, err := sh.aggColumn(agg)
		if err != nil {
			return mergeKey{}, err
		}
		k.val, k.weight = col, a.weight
		return k, nil
	}
	if hasAggregateExpr(e) {
		return mergeKey{}, sqlerr.NotSupported("ORDER BY expression %s over aggregates on a query over several shards", k.text)
	}
	for _, g := range sh.plan.order {
		if g.text == k.text {
			k.val, k.weight = g.val, g.weight
			return k, nil
		}
	}
	if i := sh.fieldOf(e); i >= 0 {
		k.val = colRef(i)
		return k, nil
	}
	return mergeKey{}, sqlerr.NotSupported("ORDER BY %s, neither grouped nor selected, on a query over several shards", k.text)
}

// finishFields appends the hidden columns to the shards' select list.
func (sh *scatterShape) finishFields() error {
	sh.plan.hidden = len(sh.hidden)
	if len(sh.hidden) > 0 {
		fields := slices.Clone(sh.fields)
		sh.sel.Fields = &ast.FieldList{Fields: append(fields, sh.hidden...)}
	}
	return nil
}

// exprText is an expression as SQL, for comparing expressions and for EXPLAIN.
func (s *Session) exprText(e ast.Node) string {
	text, err := s.restore(e)
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

// planScatter plans a SELECT over the slots its conditions allow. When they all live in
// one physical table set on one shard, the statement is renamed and returned as that
// shard's (p.scatter stays nil); otherwise p.scatter holds a statement per shard and the
// merge. At prepare time (s.describing) it describes the statement from its first slot.
func (s *Session) planScatter(sel *ast.SelectStmt, a *analyzer, params []wire.Param, p *plan) (*rules.Shard, error) {
	var sharded []tableRef
	for _, r := range a.refs {
		switch r.table.Kind {
		case rules.KindSharded:
			sharded = append(sharded, r)
		case rules.KindSingle:
			return nil, sqlerr.NotSupported("a query over several shards joining single table %s (it lives on shard %s only)", r.table.Name, r.db.DefaultShard.Name)
		}
	}
	if a.infoSchema {
		return nil, sqlerr.NotSupported("information_schema in a query over several shards")
	}
	slots, err := s.scatterSlots(sel, sharded, params)
	if errors.Is(err, errNeedsParams) && s.describing {
		slots, err = []int{0}, nil
	}
	if err != nil {
		return nil, err
	}
	if len(slots) == 0 {
		slots = []int{0} // contradictory key conditions: any one shard answers "no rows"
	}
	scheme := sharded[0].table.Scheme
	byShard := map[*rules.Shard][]int{}
	var order []*rules.Shard
	for _, slot := range slots {
		sh := scheme.SlotShard(slot)
		if byShard[sh] == nil {
			order = append(order, sh)
		}
		byShard[sh] = append(byShard[sh], slot)
	}
	perSlot := func(sh *rules.Shard) [][]int {
		// Slots sharing physical names on a shard are one set of tables.
		groups := map[string][]int{}
		var names []string
		for _, slot := range byShard[sh] {
			n := physicalNames(sharded, slot)
			if groups[n] == nil {
				names = append(names, n)
			}
			groups[n] = append(groups[n], slot)
		}
		out := make([][]int, 0, len(names))
		for _, n := range names {
			out = append(out, groups[n])
		}
		return out
	}
	if s.describing || (len(order) == 1 && len(perSlot(order[0])) == 1) {
		slot := slots[0]
		for _, r := range sharded {
			rename(r, r.table.PhysicalName(slot), true)
		}
		p.dynamic = p.dynamic || s.describing
		return scheme.SlotShard(slot), nil
	}
	shape, err := s.shapeScatter(sel, sharded, params)
	if err != nil {
		return nil, err
	}
	for _, f := range a.unnamed {
		f.AsName = ast.NewCIStr(strings.TrimSpace(f.Text()))
	}
	sp := &scatterPlan{merge: shape.plan}
	for _, sh := range order {
		var parts []string
		groups := perSlot(sh)
		for _, g := range groups {
			for _, r := range sharded {
				rename(r, r.table.PhysicalName(g[0]), true)
			}
			for _, ref := range a.schemas {
				*ref = ast.NewCIStr(sh.Database)
			}
			sql, err := s.restore(sel)
			if err != nil {
				return nil, err
			}
			parts = append(parts, sql)
		}
		sql := parts[0]
		if len(parts) > 1 {
			sql = "(" + strings.Join(parts, ") UNION ALL (") + ")"
			if len(shape.plan.order) > 0 {
				text, err := s.restore(shape.orderByKeys(shape.plan.order))
				if err != nil {
					return nil, err
				}
				sql += " " + text
			}
			if l := shape.sel.Limit; l != nil {
				text, err := s.restore(l)
				if err != nil {
					return nil, err
				}
				sql += " " + text
			}
		}
		sp.targets = append(sp.targets, scatterTarget{shard: sh, slots: byShard[sh], sql: sql})
	}
	p.scatter = sp
	return nil, nil
}

// physicalNames identifies the physical tables a slot's rows are in.
func physicalNames(refs []tableRef, slot int) string {
	var b strings.Builder
	for _, r := range refs {
		b.WriteString(r.table.PhysicalName(slot))
		b.WriteByte(0)
	}
	return b.String()
}
