package router

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// boundRoute is the route of a prepared statement whose shard depends on a ? shard key,
// planned once at PREPARE: the statement's tree (parsed once, kept by the statement), the
// sharded tables whose keys the parameters give, and what depends on the slot the values
// name: each table's physical name and the physical database of schema qualifiers. Those
// are the plan's bind variables; resolve fills them in for one execution without parsing
// or analysing the statement again.
//
// The session values the statement embeds (LAST_INSERT_ID(), DATABASE(),
// @@max_execution_time) are bind variables too, filled in from the session at each
// execution; a statement on single and broadcast tables only that embeds them has a fixed
// route of this kind (the shard is known, the values are not). Values that send a write to
// several slots make it a multi-shard write planned on the kept tree (resolveWrite). It
// holds only for the snapshot, current database and restore flags it was planned under; a
// statement that asks about the previous one (diagnostics), reads information_schema, or is
// a scatter gets none and is planned again at each execution.
type boundRoute struct {
	snap    *rules.Snapshot
	pl      *planner // the prepare-time view it was planned with (reads key values)
	db      string   // the session's database it was planned under
	flags   format.RestoreFlags
	st      ast.StmtNode
	text    string         // the text planned (sent as is when nothing is renamed)
	refs    []tableRef     // every table of a logical database the statement names
	sharded []tableRef     // the sharded ones, in the order routeSharded reads them: top-level ones first, then those of subqueries
	top     int            // how many of sharded are top-level tables
	wheres  []ast.ExprNode // the WHERE that pins each sharded table's key
	logical []string       // each sharded table's name as the client wrote it
	schemas []*ast.CIStr
	schemaL []string // each schema qualifier as the client wrote it
	unnamed []*ast.SelectField
	// vals are the session values written into the statement (LAST_INSERT_ID(), ...): bind
	// variables filled in at each execution.
	vals    []sessionVal
	insert  bool // an INSERT into a sharded table: its rows' keys give the slot
	alias   bool // renamed tables keep their logical name as an alias (see rename)
	rewrite bool // the analysis rewrote the statement: restore it even if no name changes
	db0     *rules.Database
	fixed   *rules.Shard // a statement on no sharded table: its shard, whatever the values
	multi   bool         // a multi-shard write embedding session values: resolveWrite only
	a       *analyzer    // the prepare-time analysis (resolveWrite plans a multi-shard write from it)
}

// newBoundRoute records a statement routed by its parameters, after its analysis and before
// the prepare-time plan renames anything (what the analysis rewrote is the same at every
// execution). It returns nil for statements it cannot route alone.
func newBoundRoute(pl *planner, snap *rules.Snapshot, st ast.StmtNode, text string, a *analyzer, db *rules.Database) *boundRoute {
	b := &boundRoute{snap: snap, pl: pl, db: pl.db, flags: pl.restoreFlags, st: st, text: text, refs: a.refs, db0: db, a: a}
	_, isDelete := st.(*ast.DeleteStmt)
	b.alias = !isDelete
	top := topLevelTables(st)
	var nested []tableRef
	for _, r := range a.refs {
		switch {
		case r.table.Kind != rules.KindSharded:
		case !top[r.node]:
			nested = append(nested, r) // in a subquery: pinned by its own block's WHERE (routeNested)
		default:
			b.sharded = append(b.sharded, r)
		}
	}
	b.top = len(b.sharded)
	if b.top == 0 && len(nested) == 0 {
		return nil
	}
	switch n := st.(type) {
	case *ast.InsertStmt:
		if len(a.refs) != 1 || n.Select != nil || b.sharded[0].node != targetTable(st) {
			return nil
		}
		b.insert, b.alias = true, false
	case *ast.UpdateStmt:
		if checkKeyNotUpdated(n, b.sharded) != nil {
			return nil
		}
	}
	b.sharded = append(b.sharded, nested...)
	wheres := blockWheres(st)
	for _, r := range b.sharded {
		b.logical = append(b.logical, r.node.Name.O)
		if len(nested) > 0 {
			b.wheres = append(b.wheres, wheres[r.node]) // as routeNested reads them
		} else {
			b.wheres = append(b.wheres, whereOf(st)) // as routeSharded reads them
		}
	}
	b.bindVars(a)
	return b
}

// newFixedRoute records a statement on single and broadcast tables only that embeds session
// values: its shard is fixed (planning placed it there), its session values are bind
// variables. It returns nil for a statement that names a sharded table.
func newFixedRoute(pl *planner, snap *rules.Snapshot, st ast.StmtNode, text string, a *analyzer, db *rules.Database, shard *rules.Shard) *boundRoute {
	if a.sharded() || len(a.sessionVals) == 0 {
		return nil
	}
	_, isDelete := st.(*ast.DeleteStmt)
	b := &boundRoute{snap: snap, pl: pl, db: pl.db, flags: pl.restoreFlags, st: st, text: text, refs: a.refs, db0: db, a: a, fixed: shard, alias: !isDelete}
	b.bindVars(a)
	return b
}

// bindVars records the bind variables of the analysis other than the tables' names: schema
// qualifiers, fields named by their text, session values.
func (b *boundRoute) bindVars(a *analyzer) {
	for _, ref := range a.schemas {
		b.schemas = append(b.schemas, ref)
		b.schemaL = append(b.schemaL, ref.O)
	}
	b.unnamed, b.rewrite, b.vals = a.unnamed, a.rewrite, a.sessionVals
}

// finish completes the route once the prepare-time analysis is over: only a statement that
// depends on nothing of the session but its parameters keeps it.
func (b *boundRoute) finish(r *plan.Route, a *analyzer) *boundRoute {
	if b == nil || a.diagnostic || a.infoSchema || showOf(b.st) != nil || !r.Names.Empty() {
		return nil
	}
	return b
}

// resolve places one execution: the shard its parameters name and the SQL to prepare there.
// ok is false when the route is not a single slot known from the parameters alone (several
// slots, a value the key's function refuses, a single table elsewhere, a changed session or
// snapshot): the caller then plans the statement in full, which answers those cases.
func (b *boundRoute) resolve(v execView, snap *rules.Snapshot, params []wire.Param) (shard *rules.Shard, sql string, cols introspect.Columns, ok bool) {
	if !b.holds(v, snap) || b.multi {
		return nil, "", introspect.Columns{}, false
	}
	slot := 0
	if shard = b.fixed; shard == nil {
		if slot, ok = b.slot(params); !ok {
			return nil, "", introspect.Columns{}, false
		}
		shard = b.sharded[0].table.Scheme.SlotShard(slot)
	}
	if checkSingles(b.refs, shard) != nil || !fillSessionVals(v, snap, b.vals) {
		return nil, "", introspect.Columns{}, false
	}
	sql, err := b.fill(func(t *rules.Table) string { return t.PhysicalName(slot) }, shard.Database)
	if err != nil {
		return nil, "", introspect.Columns{}, false
	}
	return shard, sql, introspect.ColumnsOf(b.db0, shard), true
}

// holds reports whether the route was planned under the session's snapshot, database,
// restore flags and table locks (while the session holds LOCK TABLES on sharded tables,
// slot tables are named bare: tableRef.bare).
func (b *boundRoute) holds(v execView, snap *rules.Snapshot) bool {
	return b != nil && snap == b.snap && v.db == b.db && v.flags == b.flags && b.pl.locked == v.locked
}

// execView is what placing a prepared plan at EXECUTE reads of the session: the state the
// plan must have been planned under, and the session's values for its bind variables.
type execView struct {
	db     string
	flags  format.RestoreFlags
	locked bool // LOCK TABLES on sharded tables
	vals   sessionValues
}

// execViewOf is s's execView now.
func execViewOf(s *Session) execView {
	return execView{db: s.db, flags: s.vars.restoreFlags, locked: s.locks.locked(), vals: liveValues{s}}
}

// liveValues are the session's values as execution binds them (sessionValues).
type liveValues struct{ s *Session }

// SessionValue is s's sessionValue.
func (v liveValues) SessionValue(snap *rules.Snapshot, name string) (any, bool) {
	return v.s.sessionValue(snap, name)
}

// sessionValues gives the session's values of the functions a plan binds at execution
// (LAST_INSERT_ID(), DATABASE(), CONNECTION_ID(), VERSION(), the deadline variables).
type sessionValues interface {
	SessionValue(snap *rules.Snapshot, name string) (any, bool)
}

// fillSessionVals writes the session's values into the session value nodes vals; false
// for a value that is not filled in at execution (diagnostics).
func fillSessionVals(ev execView, snap *rules.Snapshot, vals []sessionVal) bool {
	for _, v := range vals {
		val, ok := ev.vals.SessionValue(snap, v.name)
		if !ok {
			return false
		}
		*v.node = *ast.NewValueExpr(val, "", "").(*test_driver.ValueExpr)
	}
	return true
}

// resolveWrite places an execution whose values send a write to several slots (an UPDATE
// or DELETE whose ? keys name several, a multi-row INSERT whose rows fall in several), or
// a multi-shard write that embeds session values (multiRoute): the multi-shard write is
// planned on the statement's tree with the analysis PREPARE made of it, without parsing.
// Splitting restores each part from the tree, renamed per slot, as planning a fresh tree
// does; fill names the tree again for the next execution. ok is false when the values do
// not make a multi-shard write (resolve places one slot; a refused value is the full
// planning's to report).
func (b *boundRoute) resolveWrite(v execView, snap *rules.Snapshot, params []wire.Param) (*plan.MultiWrite, bool) {
	if !b.holds(v, snap) || b.fixed != nil || !isWrite(b.st) || !fillSessionVals(v, snap, b.vals) {
		return nil, false
	}
	a := b.a
	p, ok, err := b.pl.planMultiWrite(plan.Attrs{Sticky: a.sticky, Dynamic: a.dynamic, Diagnostic: a.diagnostic}, b.text, b.st, a, params)
	w, multi := p.(*plan.MultiWrite)
	if !ok || err != nil || !multi {
		return nil, false
	}
	return w, true
}

// multiRoute records a prepared multi-shard write that embeds session values (its
// branches' statements hold them), analysed on a tree of its own: each execution fills them
// in and splits it on that tree (resolveWrite). It returns nil for a write that embeds none
// (newWriteRoute keeps those) or asks about the previous statement.
func multiRoute(s *Session, snap *rules.Snapshot, text string) *boundRoute {
	st, err := s.parseOne(text)
	if err != nil {
		return nil
	}
	pl := s.planner(snap)
	a, err := pl.analyze(snap, st)
	if err != nil || len(a.sessionVals) == 0 || a.diagnostic || a.infoSchema || pl.locked {
		return nil
	}
	numberParams(a.markers)
	db, err := pl.statementDB(snap, a)
	if err != nil {
		return nil
	}
	b := &boundRoute{snap: snap, pl: pl, db: pl.db, flags: pl.restoreFlags, st: st, text: text, refs: a.refs, db0: db, a: a, multi: true}
	b.bindVars(a)
	return b
}

// writeRoute is a multi-shard write whose branches its parameters do not change, planned
// once at PREPARE: a write to a broadcast table, an UPDATE or DELETE whose WHERE names no
// shard key (or literal keys of several slots), a multi-row INSERT whose keys are literals.
// Each EXECUTE hands each branch statement its values; nothing is parsed or restored. It
// holds for the snapshot, database and restore flags it was planned under, without LOCK
// TABLES; a write that embeds session values gets none (multiRoute).
type writeRoute struct {
	snap  *rules.Snapshot
	db    string
	flags format.RestoreFlags
	w     *plan.MultiWrite
}

// newWriteRoute keeps p, the prepare-time plan of a statement, when it is such a write.
func newWriteRoute(s *Session, snap *rules.Snapshot, p plan.Primitive) *writeRoute {
	w, ok := p.(*plan.MultiWrite)
	if !ok || w.Dynamic || w.Diagnostic || !w.Names.Empty() || s.locks.locked() {
		return nil
	}
	return &writeRoute{snap: snap, db: s.db, flags: s.vars.restoreFlags, w: w}
}

// resolve is the write's plan for one execution: the branches with the execution's
// values, each statement given the ones it kept (as planning with the values gives them).
func (r *writeRoute) resolve(v execView, snap *rules.Snapshot, params []wire.Param) (*plan.MultiWrite, bool) {
	if r == nil || snap != r.snap || v.db != r.db || v.flags != r.flags || v.locked {
		return nil, false
	}
	w := *r.w
	w.Branches = make([]plan.Branch, len(r.w.Branches))
	for i, b := range r.w.Branches {
		stmts := make([]plan.WriteStmt, len(b.Stmts))
		for j, ws := range b.Stmts {
			if params != nil {
				ws.Params = make([]wire.Param, len(ws.ParamIdx))
				for k, idx := range ws.ParamIdx {
					ws.Params[k] = params[idx]
				}
			}
			stmts[j] = ws
		}
		w.Branches[i] = plan.Branch{Shard: b.Shard, Stmts: stmts}
	}
	return &w, true
}

// fill writes the statement with its bind variables filled in: each sharded table under
// the name phys gives it, schema qualifiers naming db. The text is the client's as long as
// nothing differs from it, as full planning leaves it.
func (b *boundRoute) fill(phys func(*rules.Table) string, db string) (string, error) {
	rewrite := b.rewrite
	for i, r := range b.sharded {
		if name := phys(r.table); name != b.logical[i] {
			rename(r, name, b.alias || i >= b.top) // a subquery's table keeps its name as an alias
			rewrite = true
		} else {
			r.node.Name = ast.NewCIStr(name)
		}
	}
	for i, ref := range b.schemas {
		*ref = ast.NewCIStr(db)
		rewrite = rewrite || b.schemaL[i] != db
	}
	if !rewrite {
		return b.text, nil
	}
	for _, f := range b.unnamed {
		f.AsName = ast.NewCIStr(strings.TrimSpace(f.Text()))
	}
	return restoreSQL(b.flags, nil, b.st)
}

// Explain describes the route with its bind variables unfilled (EXPLAIN SHARDS of a
// statement routed by its parameters): the shard of the slot the bound key names, and the
// SQL with the slot's physical table and database names and the session values as
// placeholders ('{last_insert_id}').
func (b *boundRoute) Explain() ([]plan.Step, error) {
	for _, v := range b.vals {
		*v.node = *ast.NewValueExpr("{"+v.name+"}", "", "").(*test_driver.ValueExpr)
	}
	shard, db := "{shard of the bound key's slot}", "{slot's database}"
	if b.fixed != nil {
		shard, db = b.fixed.Name, b.fixed.Database
	}
	sql, err := b.fill(func(t *rules.Table) string {
		if t.TablePerSlot {
			return t.Name + "_{slot}"
		}
		return t.Name
	}, db)
	if err != nil {
		return nil, err
	}
	return []plan.Step{{Step: "route", Shard: shard, SQL: sql}}, nil
}

// slot is the one slot every sharded table's key values name, as routeSharded finds it.
func (b *boundRoute) slot(params []wire.Param) (int, bool) {
	if b.insert {
		slots, err := insertRowSlots(b.st.(*ast.InsertStmt), b.sharded[0], params)
		if err != nil || len(distinct(slots)) != 1 {
			return 0, false
		}
		return slots[0], true
	}
	slot := -1
	for i, r := range b.sharded {
		vals, ok, err := b.pl.keyValues(b.wheres[i], r, params)
		if err != nil || !ok {
			return 0, false
		}
		slots, err := slotsOf(r.table, vals)
		if err != nil || len(slots) != 1 || (slot >= 0 && slots[0] != slot) || r.table.Scheme != b.sharded[0].table.Scheme {
			return 0, false
		}
		slot = slots[0]
	}
	return slot, slot >= 0
}

// sessionVal is a value of the session written into a statement: its node and what it is.
type sessionVal struct {
	node *test_driver.ValueExpr
	name string // last_insert_id, database, schema, connection_id, version, max_execution_time, max_statement_time
}

// sessionValue is the session's value name now, as planning writes it (analyzer.Leave);
// ok is false for one a bound route does not fill in (diagnostics).
func (s *Session) sessionValue(snap *rules.Snapshot, name string) (any, bool) {
	switch name {
	case "last_insert_id":
		return s.ids.last, true
	case "database", "schema":
		if s.db == "" {
			return nil, true
		}
		return s.db, true
	case "connection_id":
		return uint64(s.info.ConnID), true
	case "version":
		return s.r.version, true
	case varMaxExecutionTime, varMaxStatementTime:
		d, _ := s.vars.deadline(snap, s.user, s.db, hintDeadline{})
		return (&planner{deadline: d}).deadlineVarValue(name), true
	}
	return nil, false
}

// replan plans a prepared statement again, as PREPARE did, under a snapshot that replaced
// the one it was planned under, and keeps the new plan for this and later executions: its
// bound route, kept branches, or its shard and SQL. A statement that no longer plans is
// planned in full at each execution under this snapshot, which reports why.
func (st *Stmt) replan(s *Session, snap *rules.Snapshot) {
	if node, err := s.parseOne(st.text); err == nil {
		if p, err := describePrepared(s, snap, node, st.text, st.returning); err == nil {
			st.setPlan(s, snap, p)
			return
		}
	}
	st.snap, st.dynamic, st.bound, st.writes = snap, true, nil, nil
}

// boundOf is the bound route of a prepare-time plan, nil when it has none.
func boundOf(p plan.Primitive) *boundRoute {
	if r, ok := p.(*plan.Route); ok {
		b, _ := r.Bound.(*boundRoute)
		return b
	}
	return nil
}
