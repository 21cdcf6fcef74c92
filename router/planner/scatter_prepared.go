package planner

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// ScatterTemplate is a prepared SELECT that runs on several shards, planned once at PREPARE:
// each shard's statement as a template cut at its parameters, the merge plan, and the
// statement's WHERE, which prunes the slots of each execution from its bound values. An
// execution writes each parameter's literal into the templates (as binding it into the
// tree and restoring it would) and sends them to the shards its values need: it parses
// and plans nothing.
//
// It is built only when the plan depends on the values in ways it can write in: every ? in
// WHERE; LIMIT ? [, ?] (the merge's offset and count, and the LIMIT offset+count pushed to
// the shards, follow the values; see limitHoles); HAVING ? and a ? field of the select
// list as long as the shards evaluate them (the merge groups nothing: with a merge that
// groups, computes or filters, planning reads the value); session values written into its
// WHERE (sessionSentinels). A statement without any of those is planned pruned, its
// shards' statements kept whole. With tables per slot a shard's statement is a UNION of the
// tables of the slots the values need: it is planned for each set of slots at the first
// execution that needs it (slotShards). It is not built for session values elsewhere (a
// field named by its text), subqueries over sharded tables (those bind at each execution:
// router/subquery_bind.go), or LIMIT ? over tables per slot; those plan once per execution
// with their values bound in (untemplated). It holds for the snapshot, database and
// restore flags it was planned under; otherwise the execution plans the statement in full.
type ScatterTemplate struct {
	snap    *rules.Snapshot
	db      string
	flags   format.RestoreFlags
	pl      *Planner
	sel     *ast.SelectStmt          // the statement with a literal in place of each ? (its WHERE prunes)
	Lits    []*test_driver.ValueExpr // those literals: each execution's values, as binding writes them
	sharded []TableRef
	ldb     *rules.Database              // the logical database of its columns (introspect.ColumnsOf)
	Shards  map[*rules.Shard]SQLTemplate // nil: the statement does not fit a template
	Merge   *plan.Merge
	Limit   limitHoles
	// Vals are the session values written into its WHERE (LAST_INSERT_ID(), DATABASE(),
	// ...): bind variables filled in at each execution, their holes after the LIMIT's.
	Vals []SessionVal
	// PerSlot: with tables per slot, a shard's statement is a UNION of the tables of the
	// slots the values need: the shards' statements of each set of slots, planned at the
	// first execution that needs it (nil: it does not fit), at most maxSlotSets of them.
	PerSlot map[string]map[*rules.Shard]SQLTemplate
	text    string // the text planned, parsed again for each set of slots
	// merged: a parameter is in HAVING or the select list: the template holds only when
	// the shards evaluate them and the merge reads their columns as they come.
	merged bool
}

// limitHoles are the parameters of a scatter SELECT's LIMIT [offset,] count: which ones
// they are (-1: a literal, or none), and whether the shards' statements end with the LIMIT
// offset+count that planning pushes down (then the hole after the parameters' holes: the
// whole clause, which a count beyond reach leaves out).
type limitHoles struct {
	Count, Offset int
	Pushed        bool
}

// Sentinels bound to LIMIT parameters when a template is planned: numbers no statement is
// expected to hold, whose sum (the pushed LIMIT) is found in the shards' statements.
const (
	LimitCountSentinel  = 4398046511104123
	LimitOffsetSentinel = 1000000007
)

// TriedUnder reports whether the template was built (or found not to fit) under the
// session's current snapshot, database, restore flags and stickiness (after
// SQL_CALC_FOUND_ROWS, FOUND_ROWS() is the backend's to answer).
func (t *ScatterTemplate) TriedUnder(v ExecView, snap *rules.Snapshot) bool {
	return t != nil && snap == t.snap && v.DB == t.db && v.Flags == t.flags && v.Sticky == t.pl.Sticky
}

// ParseFunc parses one statement as the session's parser does (its sql_mode).
type ParseFunc func(text string) (ast.StmtNode, error)

// SQLTemplate is a statement cut at its parameters: parts[0], then parameter holes[0]'s
// literal, then parts[1], and so on.
type SQLTemplate struct {
	parts []string
	Holes []int
}

// Fill writes the statement with the parameters' literals.
func (t SQLTemplate) Fill(lits []string) string {
	n := 0
	for _, p := range t.parts {
		n += len(p)
	}
	for _, h := range t.Holes {
		n += len(lits[h])
	}
	var b strings.Builder
	b.Grow(n)
	for i, p := range t.parts {
		b.WriteString(p)
		if i < len(t.Holes) {
			b.WriteString(lits[t.Holes[i]])
		}
	}
	return b.String()
}

// PrepareScatter plans a prepared SELECT as a scatter template, at the first execution that
// sends it to several shards (a statement whose executions go to one shard never pays for
// it). The template has no shards when the statement does not fit one (see
// scatterTemplate). It parses the text twice: once to keep its WHERE with the markers, once
// to plan with each marker bound to a sentinel literal that the shards' statements are then
// cut at.
func PrepareScatter(pl *Planner, snap *rules.Snapshot, text string, parse ParseFunc) *ScatterTemplate {
	t := &ScatterTemplate{snap: snap, db: pl.DB, flags: pl.RestoreFlags, pl: pl}
	if pl.Locked {
		return t
	}
	shards := map[*rules.Shard]SQLTemplate{}
	if t.build(parse, snap, text, shards) {
		t.Shards = shards
	}
	return t
}

// build fills shards with each shard's statement cut at its parameters, or reports false.
func (t *ScatterTemplate) build(parse ParseFunc, snap *rules.Snapshot, text string, shards map[*rules.Shard]SQLTemplate) bool {
	node, err := parse(text)
	if err != nil {
		return false
	}
	sel, ok := node.(*ast.SelectStmt)
	if !ok {
		return false
	}
	a, err := t.pl.Analyze(snap, sel)
	if err != nil || a.Diagnostic || a.InfoSchema || a.Sticky || !inWhere(sel, a.SessionVals) {
		return false // (a.dynamic: session values, bind variables here; or diagnostics)
	}
	NumberParams(a.Markers)
	top := topLevelTables(sel)
	for _, r := range a.Refs {
		if r.Table.Kind != rules.KindSharded {
			continue
		}
		if !top[r.Node] {
			return false
		}
		if r.Table.TablePerSlot {
			t.PerSlot = map[string]map[*rules.Shard]SQLTemplate{}
		}
		t.sharded = append(t.sharded, r)
	}
	if len(t.sharded) == 0 || !t.placeMarkers(sel, len(a.Markers)) {
		return false
	}
	if t.ldb, err = t.pl.StatementDB(snap, a); err != nil {
		return false
	}
	t.sel, t.Lits, t.Vals = sel, LiteralSlots(sel, a.Markers), a.SessionVals
	if t.PerSlot != nil { // planned per set of slots (slotShards); a LIMIT ? is pushed into each UNION part
		t.text = text
		return t.Limit.Count < 0 && t.Limit.Offset < 0
	}
	bound, err := parse(text) // a second tree: planning rewrites it
	return err == nil && t.plan(snap, bound, text, len(a.Markers), shards, nil)
}

// maxSlotSets bounds the sets of slots a template of tables per slot keeps statements for.
const maxSlotSets = 16

// slotShards are the shards' statements of a template of tables per slot for an execution
// that needs slots, planned (one parse) at the first execution that needs them; nil when
// they do not fit a template, or when maxSlotSets other sets are kept already.
func (t *ScatterTemplate) slotShards(parse ParseFunc, snap *rules.Snapshot, slots []int) map[*rules.Shard]SQLTemplate {
	key := fmt.Sprint(slots)
	if shards, ok := t.PerSlot[key]; ok {
		return shards
	}
	if len(t.PerSlot) >= maxSlotSets {
		return nil
	}
	shards := map[*rules.Shard]SQLTemplate{}
	node, err := parse(t.text)
	if err != nil || !t.plan(snap, node, t.text, len(t.Lits), shards, slots) {
		shards = nil
	}
	t.PerSlot[key] = shards
	return shards
}

// placeMarkers reports whether each of sel's n parameters is where a template can write
// it: in WHERE, LIMIT [offset,] count, HAVING or as a field of its own in the select list.
// It records those of LIMIT (limitHoles), and whether any is in HAVING or the select list,
// which hold only while the merge plan does not evaluate them (plan).
func (t *ScatterTemplate) placeMarkers(sel *ast.SelectStmt, n int) bool {
	var inWhere, inHaving MarkerCollector
	if sel.Where != nil {
		sel.Where.Accept(&inWhere)
	}
	if sel.Having != nil {
		sel.Having.Accept(&inHaving)
	}
	t.Limit = limitHoles{Count: limitMarker(sel, func(l *ast.Limit) ast.ExprNode { return l.Count }), Offset: limitMarker(sel, func(l *ast.Limit) ast.ExprNode { return l.Offset })}
	placed := len(inWhere) + len(inHaving)
	if t.Limit.Count >= 0 {
		placed++
	}
	if t.Limit.Offset >= 0 {
		placed++
	}
	fields := 0
	for _, f := range sel.Fields.Fields {
		if _, ok := f.Expr.(*test_driver.ParamMarkerExpr); ok {
			fields++
		}
	}
	t.merged = len(inHaving) > 0 || fields > 0
	return placed+fields == n
}

// inWhere reports whether every session value node of vals is in sel's WHERE.
func inWhere(sel *ast.SelectStmt, vals []SessionVal) bool {
	if len(vals) == 0 {
		return true
	}
	if sel.Where == nil {
		return false
	}
	var c valueCollector
	sel.Where.Accept(&c)
	for _, v := range vals {
		if !slices.Contains(c, v.Node) {
			return false
		}
	}
	return true
}

// valueCollector collects the literals of an expression.
type valueCollector []*test_driver.ValueExpr

func (c *valueCollector) Enter(n ast.Node) (ast.Node, bool) {
	if v, ok := n.(*test_driver.ValueExpr); ok {
		*c = append(*c, v)
	}
	return n, false
}

func (c *valueCollector) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// limitMarker is the index of the parameter part gives of sel's LIMIT, -1 when it is not a ?.
func limitMarker(sel *ast.SelectStmt, part func(*ast.Limit) ast.ExprNode) int {
	if sel.Limit == nil {
		return -1
	}
	if m, ok := part(sel.Limit).(*test_driver.ParamMarkerExpr); ok {
		return m.Order
	}
	return -1
}

// LiteralSlots puts a literal in the place of each of st's markers (in text order), for
// each execution to set to its value: the statement's WHERE then prunes as binding the
// values into a fresh tree would.
func LiteralSlots(st ast.Node, markers []*test_driver.ParamMarkerExpr) []*test_driver.ValueExpr {
	lits := make([]*test_driver.ValueExpr, len(markers))
	values := make(MarkerReplacer, len(markers))
	for i, m := range markers {
		lits[i] = ast.NewValueExpr(nil, "", "").(*test_driver.ValueExpr)
		values[m] = lits[i]
	}
	st.Accept(values)
	return lits
}

// plan plans the statement with sentinels bound to its n parameters, over every slot, and
// keeps each shard's statement cut at the sentinels.
func (t *ScatterTemplate) plan(snap *rules.Snapshot, node ast.StmtNode, text string, n int, shards map[*rules.Shard]SQLTemplate, slots []int) bool {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	tag := "shardproxy_param_" + hex.EncodeToString(nonce[:]) + "_"
	if strings.Contains(text, tag) {
		return false
	}
	params := make([]wire.Param, n)
	for i := range params {
		switch i {
		case t.Limit.Count:
			params[i] = int64Param(LimitCountSentinel)
		case t.Limit.Offset:
			params[i] = int64Param(LimitOffsetSentinel)
		default:
			params[i] = wire.Param{Type: 0xfd, Value: wire.AppendLenencString(nil, tag+strconv.Itoa(i)+"_")} // VAR_STRING
		}
	}
	if BindParams(node, params) != nil || !t.sessionSentinels(snap, node, tag, n) {
		return false
	}
	pl := *t.pl
	pl.Unpruned = n > 0 || len(t.Vals) > 0 || slots != nil // without holes its shards are exactly those planned
	pl.Slots = slots
	p, err := pl.Plan(snap, node, text, nil)
	sp, ok := p.(*plan.Scatter)
	if err != nil || !ok || sp.Merge.Branched {
		return false
	}
	if m := sp.Merge; t.merged && (m.Group || len(m.Aggs) > 0 || m.Rows != nil) {
		return false // the merge plan evaluates a value: planning read the sentinel
	}
	quoted, err := RestoreSQL(t.flags, nil, ast.NewValueExpr(tag, "", ""))
	if err != nil || !strings.HasSuffix(quoted, tag+"'") {
		return false
	}
	open := strings.TrimSuffix(quoted, tag+"'") + tag // the literal's opening up to the sentinel's index
	m := sp.Merge
	pushed := " LIMIT " + strconv.FormatInt(m.Offset+m.Count, 10)
	for i, tg := range sp.Targets {
		sql := tg.SQL
		if t.Limit.Count >= 0 || t.Limit.Offset >= 0 {
			if strings.Count(sql, pushed) > 1 || (i > 0 && strings.Contains(sql, pushed) != t.Limit.Pushed) {
				return false
			}
			if strings.HasSuffix(sql, pushed) { // the LIMIT offset+count pushed down: a hole of its own
				t.Limit.Pushed = true
				sql = strings.TrimSuffix(sql, pushed) + open + strconv.Itoa(n) + "_'"
			}
			if strings.Contains(sql, strconv.Itoa(LimitCountSentinel)) || strings.Contains(sql, strconv.Itoa(LimitOffsetSentinel)) {
				return false // a LIMIT value the template cannot write
			}
		}
		tmpl, ok := cutTemplate(sql, open, n+1+len(t.Vals))
		if !ok {
			return false
		}
		shards[tg.Shard] = tmpl
	}
	t.Merge = sp.Merge
	return true
}

// sessionSentinels writes a sentinel literal, the hole after the LIMIT's, in place of
// each session value of node (analysed here as planning analyses it), so that planning
// keeps them out of its rewrites as it does the parameters' sentinels.
func (t *ScatterTemplate) sessionSentinels(snap *rules.Snapshot, node ast.StmtNode, tag string, n int) bool {
	if len(t.Vals) == 0 {
		return true
	}
	a, err := t.pl.Analyze(snap, node)
	if err != nil || len(a.SessionVals) != len(t.Vals) {
		return false
	}
	for j, v := range a.SessionVals {
		if v.Name != t.Vals[j].Name {
			return false
		}
		*v.Node = *ast.NewValueExpr(tag+strconv.Itoa(n+1+j)+"_", "", "").(*test_driver.ValueExpr)
	}
	return true
}

// int64Param is v as a BIGINT parameter.
func int64Param(v int64) wire.Param {
	return wire.Param{Type: 0x08, Value: binary.LittleEndian.AppendUint64(nil, uint64(v))} // LONGLONG
}

// cutTemplate cuts sql at each sentinel literal: open, the parameter's index, "_'".
func cutTemplate(sql, open string, n int) (SQLTemplate, bool) {
	var t SQLTemplate
	for {
		i := strings.Index(sql, open)
		if i < 0 {
			t.parts = append(t.parts, sql)
			return t, true
		}
		rest := sql[i+len(open):]
		j := strings.Index(rest, "_'")
		if j <= 0 {
			return SQLTemplate{}, false
		}
		h, err := strconv.Atoi(rest[:j])
		if err != nil || h < 0 || h >= n {
			return SQLTemplate{}, false
		}
		t.parts = append(t.parts, sql[:i])
		t.Holes = append(t.Holes, h)
		sql = rest[j+2:]
	}
}

// Resolve places one execution: the shards the bound values need, each with its statement
// and the parameters' literals written in. ok is false when the template does not hold
// (another snapshot, database or restore flags), the values do not prune (an error the
// full planning reports), or they need one shard only (a single-shard route): the caller
// then plans the statement in full.
func (t *ScatterTemplate) Resolve(v ExecView, snap *rules.Snapshot, params []wire.Param, parse ParseFunc) (*plan.Scatter, introspect.Columns, bool) {
	if !t.TriedUnder(v, snap) || t.Shards == nil || v.Locked {
		return nil, introspect.Columns{}, false
	}
	if len(params) != len(t.Lits) {
		return nil, introspect.Columns{}, false
	}
	if BindLiterals(t.Lits, params) != nil {
		return nil, introspect.Columns{}, false
	}
	if !fillSessionVals(v, snap, t.Vals) {
		return nil, introspect.Columns{}, false
	}
	slots, err := t.pl.ScatterSlots(t.sel, t.sharded, nil)
	if err != nil || len(slots) == 0 {
		return nil, introspect.Columns{}, false
	}
	byShard, order := slotsByShard(t.sharded[0].Table.Scheme, slots)
	shards := t.Shards
	switch {
	case t.PerSlot != nil && len(slots) > 1: // each slot its own tables: several slots scatter
		if shards = t.slotShards(parse, snap, slots); shards == nil {
			return nil, introspect.Columns{}, false
		}
	case t.PerSlot != nil || len(order) < 2:
		return nil, introspect.Columns{}, false
	}
	n := len(t.Lits)
	if t.Limit.Pushed || len(t.Vals) > 0 {
		n += 1 + len(t.Vals) // the pushed LIMIT's hole, then the session values'
	}
	lits := make([]string, len(t.Lits), n)
	for i, l := range t.Lits {
		if lits[i], err = RestoreSQL(t.flags, nil, l); err != nil {
			return nil, introspect.Columns{}, false
		}
	}
	merge, ok := t.limitMerge()
	if !ok {
		return nil, introspect.Columns{}, false
	}
	switch {
	case t.Limit.Pushed:
		lits = append(lits, pushedLimit(merge))
	case n > len(lits):
		lits = append(lits, "") // no LIMIT hole: the session values' holes come after its place
	}
	for _, v := range t.Vals {
		lit, err := RestoreSQL(t.flags, nil, v.Node)
		if err != nil {
			return nil, introspect.Columns{}, false
		}
		lits = append(lits, lit)
	}
	sp := &plan.Scatter{Merge: merge, Targets: make([]plan.Target, 0, len(order))}
	for _, sh := range order {
		tmpl, ok := shards[sh]
		if !ok {
			return nil, introspect.Columns{}, false
		}
		sp.Targets = append(sp.Targets, plan.Target{Shard: sh, Slots: byShard[sh], SQL: tmpl.Fill(lits)})
	}
	return sp, introspect.ColumnsOf(t.ldb, order[0]), true
}

// limitMerge is the merge plan with the execution's LIMIT values, as planning reads them
// (scatterShape.limit); ok is false for values planning refuses. Without LIMIT parameters
// it is the template's own (read-only, shared by every execution).
func (t *ScatterTemplate) limitMerge() (*plan.Merge, bool) {
	if t.Limit.Count < 0 && t.Limit.Offset < 0 {
		return t.Merge, true
	}
	m := *t.Merge
	sh := &scatterShape{}
	var err error
	if t.Limit.Count >= 0 {
		if m.Count, err = sh.LimitValue(t.Lits[t.Limit.Count]); err != nil {
			return nil, false
		}
	}
	if t.Limit.Offset >= 0 {
		if m.Offset, err = sh.LimitValue(t.Lits[t.Limit.Offset]); err != nil {
			return nil, false
		}
	}
	return &m, true
}

// pushedLimit is the LIMIT clause planning pushes to the shards for m (pushLimit): offset+count,
// or none when no shard could reach it.
func pushedLimit(m *plan.Merge) string {
	if m.Count < 0 || m.Count > math.MaxInt64-m.Offset {
		return ""
	}
	return " LIMIT " + strconv.FormatInt(m.Offset+m.Count, 10)
}
