package router

import (
	"crypto/rand"
	"encoding/hex"
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

// scatterTemplate is a prepared SELECT that runs on several shards, planned once at PREPARE:
// each shard's statement as a template cut at its parameters, the merge plan, and the
// statement's WHERE, which prunes the slots of each execution from its bound values. An
// execution writes each parameter's literal into the templates (as binding it into the
// tree and restoring it would) and sends them to the shards its values need: it parses
// and plans nothing.
//
// It is built only when the plan does not depend on the values: every ? in WHERE (the
// merge plan reads no LIMIT ?, HAVING ? or ? in the select list), no session value written
// into the statement, no subquery over sharded tables (those bind at each execution:
// subquery_prepare.go), no table per slot (a shard's statement would then depend on which
// of its slots the values need). It holds for the snapshot, database and restore flags it
// was planned under; otherwise the execution plans the statement in full.
type scatterTemplate struct {
	snap    *rules.Snapshot
	db      string
	flags   format.RestoreFlags
	pl      *planner
	sel     *ast.SelectStmt          // the statement with a literal in place of each ? (its WHERE prunes)
	lits    []*test_driver.ValueExpr // those literals: each execution's values, as binding writes them
	sharded []tableRef
	ldb     *rules.Database              // the logical database of its columns (introspect.ColumnsOf)
	shards  map[*rules.Shard]sqlTemplate // nil: the statement does not fit a template
	merge   *mergePlan
}

// triedUnder reports whether the template was built (or found not to fit) under the
// session's current snapshot, database, restore flags and stickiness (after
// SQL_CALC_FOUND_ROWS, FOUND_ROWS() is the backend's to answer).
func (t *scatterTemplate) triedUnder(s *Session, snap *rules.Snapshot) bool {
	return t != nil && snap == t.snap && s.db == t.db && s.vars.restoreFlags == t.flags && s.sticky == t.pl.sticky
}

// sqlTemplate is a statement cut at its parameters: parts[0], then parameter holes[0]'s
// literal, then parts[1], and so on.
type sqlTemplate struct {
	parts []string
	holes []int
}

// fill writes the statement with the parameters' literals.
func (t sqlTemplate) fill(lits []string) string {
	n := 0
	for _, p := range t.parts {
		n += len(p)
	}
	for _, h := range t.holes {
		n += len(lits[h])
	}
	var b strings.Builder
	b.Grow(n)
	for i, p := range t.parts {
		b.WriteString(p)
		if i < len(t.holes) {
			b.WriteString(lits[t.holes[i]])
		}
	}
	return b.String()
}

// prepareScatter plans a prepared SELECT as a scatter template, at the first execution that
// sends it to several shards (a statement whose executions go to one shard never pays for
// it). The template has no shards when the statement does not fit one (see
// scatterTemplate). It parses the text twice: once to keep its WHERE with the markers, once
// to plan with each marker bound to a sentinel literal that the shards' statements are then
// cut at.
func (s *Session) prepareScatter(snap *rules.Snapshot, text string) *scatterTemplate {
	t := &scatterTemplate{snap: snap, db: s.db, flags: s.vars.restoreFlags, pl: s.planner(snap)}
	if s.locks.locked() {
		return t
	}
	shards := map[*rules.Shard]sqlTemplate{}
	if t.build(s, snap, text, shards) {
		t.shards = shards
	}
	return t
}

// build fills shards with each shard's statement cut at its parameters, or reports false.
func (t *scatterTemplate) build(s *Session, snap *rules.Snapshot, text string, shards map[*rules.Shard]sqlTemplate) bool {
	node, err := s.parseOne(text)
	if err != nil {
		return false
	}
	sel, ok := node.(*ast.SelectStmt)
	if !ok {
		return false
	}
	a, err := t.pl.analyze(snap, sel)
	if err != nil || a.dynamic || a.diagnostic || a.infoSchema || a.sticky || len(a.sessionVals) > 0 {
		return false
	}
	numberParams(a.markers)
	top := topLevelTables(sel)
	for _, r := range a.refs {
		if r.table.Kind != rules.KindSharded {
			continue
		}
		if !top[r.node] || r.table.TablePerSlot {
			return false
		}
		t.sharded = append(t.sharded, r)
	}
	var inWhere markerCollector
	if sel.Where != nil {
		sel.Where.Accept(&inWhere)
	}
	if len(t.sharded) == 0 || len(inWhere) != len(a.markers) || len(a.markers) == 0 {
		return false
	}
	if t.ldb, err = t.pl.statementDB(snap, a); err != nil {
		return false
	}
	t.sel, t.lits = sel, literalSlots(sel, a.markers)
	bound, err := s.parseOne(text) // a second tree: planning rewrites it
	return err == nil && t.plan(snap, bound, text, len(a.markers), shards)
}

// literalSlots puts a literal in the place of each of st's markers (in text order), for
// each execution to set to its value: the statement's WHERE then prunes as binding the
// values into a fresh tree would.
func literalSlots(st ast.Node, markers []*test_driver.ParamMarkerExpr) []*test_driver.ValueExpr {
	lits := make([]*test_driver.ValueExpr, len(markers))
	values := make(markerReplacer, len(markers))
	for i, m := range markers {
		lits[i] = ast.NewValueExpr(nil, "", "").(*test_driver.ValueExpr)
		values[m] = lits[i]
	}
	st.Accept(values)
	return lits
}

// plan plans the statement with sentinels bound to its n parameters, over every slot, and
// keeps each shard's statement cut at the sentinels.
func (t *scatterTemplate) plan(snap *rules.Snapshot, node ast.StmtNode, text string, n int, shards map[*rules.Shard]sqlTemplate) bool {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	tag := "shardproxy_param_" + hex.EncodeToString(nonce[:]) + "_"
	if strings.Contains(text, tag) {
		return false
	}
	params := make([]wire.Param, n)
	for i := range params {
		params[i] = wire.Param{Type: 0xfd, Value: wire.AppendLenencString(nil, tag+strconv.Itoa(i)+"_")} // VAR_STRING
	}
	if bindParams(node, params) != nil {
		return false
	}
	pl := *t.pl
	pl.unpruned = true
	p, err := pl.plan(snap, node, text, nil)
	sp, ok := p.(*plan.Scatter)
	if err != nil || !ok || mergeOf(sp).branched {
		return false
	}
	quoted, err := restoreSQL(t.flags, nil, ast.NewValueExpr(tag, "", ""))
	if err != nil || !strings.HasSuffix(quoted, tag+"'") {
		return false
	}
	open := strings.TrimSuffix(quoted, tag+"'") + tag // the literal's opening up to the sentinel's index
	for _, tg := range sp.Targets {
		tmpl, ok := cutTemplate(tg.SQL, open, n)
		if !ok {
			return false
		}
		shards[tg.Shard] = tmpl
	}
	t.merge = mergeOf(sp)
	return true
}

// cutTemplate cuts sql at each sentinel literal: open, the parameter's index, "_'".
func cutTemplate(sql, open string, n int) (sqlTemplate, bool) {
	var t sqlTemplate
	for {
		i := strings.Index(sql, open)
		if i < 0 {
			t.parts = append(t.parts, sql)
			return t, true
		}
		rest := sql[i+len(open):]
		j := strings.Index(rest, "_'")
		if j <= 0 {
			return sqlTemplate{}, false
		}
		h, err := strconv.Atoi(rest[:j])
		if err != nil || h < 0 || h >= n {
			return sqlTemplate{}, false
		}
		t.parts = append(t.parts, sql[:i])
		t.holes = append(t.holes, h)
		sql = rest[j+2:]
	}
}

// resolve places one execution: the shards the bound values need, each with its statement
// and the parameters' literals written in. ok is false when the template does not hold
// (another snapshot, database or restore flags), the values do not prune (an error the
// full planning reports), or they need one shard only (a single-shard route): the caller
// then plans the statement in full.
func (t *scatterTemplate) resolve(s *Session, snap *rules.Snapshot, params []wire.Param) (*plan.Scatter, introspect.Columns, bool) {
	if !t.triedUnder(s, snap) || t.shards == nil || s.locks.locked() {
		return nil, introspect.Columns{}, false
	}
	if len(params) != len(t.lits) {
		return nil, introspect.Columns{}, false
	}
	for i, p := range params {
		v, err := paramLiteral(p)
		if err != nil {
			return nil, introspect.Columns{}, false
		}
		*t.lits[i] = *ast.NewValueExpr(v, "", "").(*test_driver.ValueExpr)
	}
	slots, err := t.pl.scatterSlots(t.sel, t.sharded, nil)
	if err != nil || len(slots) == 0 {
		return nil, introspect.Columns{}, false
	}
	byShard, order := slotsByShard(t.sharded[0].table.Scheme, slots)
	if len(order) < 2 {
		return nil, introspect.Columns{}, false
	}
	lits := make([]string, len(t.lits))
	for i, l := range t.lits {
		if lits[i], err = restoreSQL(t.flags, nil, l); err != nil {
			return nil, introspect.Columns{}, false
		}
	}
	sp := &plan.Scatter{Merge: t.merge, Targets: make([]plan.Target, 0, len(order))}
	for _, sh := range order {
		tmpl, ok := t.shards[sh]
		if !ok {
			return nil, introspect.Columns{}, false
		}
		sp.Targets = append(sp.Targets, plan.Target{Shard: sh, Slots: byShard[sh], SQL: tmpl.fill(lits)})
	}
	return sp, introspect.ColumnsOf(t.ldb, order[0]), true
}
