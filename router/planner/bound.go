package planner

import (
	"errors"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// BoundRoute is the route of a prepared statement whose shard depends on a ? shard key,
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
// a scatter gets none and is planned again at each execution. It owns the statement's tree
// from its first use (own) and edits it at each; it is not safe for concurrent use (a
// prepared statement's executions are its session's, one at a time).
type BoundRoute struct {
	Snap    *rules.Snapshot
	Planner *Planner // the prepare-time view it was planned with (reads key values)
	DB      string   // the session's database it was planned under
	Flags   format.RestoreFlags
	Stmt    ast.StmtNode
	Text    string         // the text planned (sent as is when nothing is renamed)
	Refs    []TableRef     // every table of a logical database the statement names
	sharded []TableRef     // the sharded ones, in the order routeSharded reads them: top-level ones first, then those of subqueries
	top     int            // how many of sharded are top-level tables
	wheres  []ast.ExprNode // the WHERE that pins each sharded table's key
	logical []string       // each sharded table's name as the client wrote it
	schemas []*ast.CIStr
	schemaL []string // each schema qualifier as the client wrote it
	unnamed []*ast.SelectField
	// vals are the session values written into the statement (LAST_INSERT_ID(), ...): bind
	// variables filled in at each execution.
	vals     []SessionVal
	insert   bool // an INSERT into a sharded table: its rows' keys give the slot
	alias    bool // renamed tables keep their logical name as an alias (see rename)
	rewrite  bool // the analysis rewrote the statement: restore it even if no name changes
	DB0      *rules.Database
	Fixed    *rules.Shard // a statement on no sharded table: its shard, whatever the values
	Multi    bool         // a multi-shard write embedding session values: resolveWrite only
	Analysis *Analyzer    // the prepare-time analysis (resolveWrite plans a multi-shard write from it)
	// binds are the analysis' edits of Stmt (session values, numbered ?s), which planning
	// put back before it returned: the route makes them again at its first use (own), and
	// the tree is the route's from then on.
	binds edits
	owned bool
	ed    edits // fill's edits, put back once the statement is written
}

// newBoundRoute records a statement routed by its parameters, after its analysis and before
// the prepare-time plan renames anything (what the analysis rewrote, the edits before mark
// binds, is the same at every execution). It returns nil for statements it cannot route
// alone.
func newBoundRoute(pl *Planner, snap *rules.Snapshot, st ast.StmtNode, text string, a *Analyzer, db *rules.Database, binds int) *BoundRoute {
	b := &BoundRoute{Snap: snap, Planner: pl, DB: pl.DB, Flags: pl.RestoreFlags, Stmt: st, Text: text, Refs: a.Refs, DB0: db, Analysis: a, binds: a.ed.upTo(binds)}
	_, isDelete := st.(*ast.DeleteStmt)
	b.alias = !isDelete
	top := topLevelTables(st)
	var nested []TableRef
	for _, r := range a.Refs {
		switch {
		case r.Table.Kind != rules.KindSharded:
		case !top[r.Node]:
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
		if len(a.Refs) != 1 || n.Select != nil || b.sharded[0].Node != targetTable(st) {
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
		b.logical = append(b.logical, r.Node.Name.O)
		if len(nested) > 0 {
			b.wheres = append(b.wheres, wheres[r.Node]) // as routeNested reads them
		} else {
			b.wheres = append(b.wheres, whereOf(st)) // as routeSharded reads them
		}
	}
	b.BindVars(a)
	return b
}

// newFixedRoute records a statement on single and broadcast tables only that embeds session
// values: its shard is fixed (planning placed it there), its session values are bind
// variables (the analysis' edits before mark binds). It returns nil for a statement that
// names a sharded table.
func newFixedRoute(pl *Planner, snap *rules.Snapshot, st ast.StmtNode, text string, a *Analyzer, db *rules.Database, shard *rules.Shard, binds int) *BoundRoute {
	if a.sharded() || len(a.SessionVals) == 0 {
		return nil
	}
	_, isDelete := st.(*ast.DeleteStmt)
	b := &BoundRoute{Snap: snap, Planner: pl, DB: pl.DB, Flags: pl.RestoreFlags, Stmt: st, Text: text, Refs: a.Refs, DB0: db, Analysis: a, Fixed: shard, alias: !isDelete, binds: a.ed.upTo(binds)}
	b.BindVars(a)
	return b
}

// BindVars records the bind variables of the analysis other than the tables' names: schema
// qualifiers, fields named by their text, session values.
func (b *BoundRoute) BindVars(a *Analyzer) {
	for _, ref := range a.schemas {
		b.schemas = append(b.schemas, ref)
		b.schemaL = append(b.schemaL, ref.O)
	}
	b.unnamed, b.rewrite, b.vals = a.unnamed, a.rewrite, a.SessionVals
}

// finish completes the route once the prepare-time analysis is over: only a statement that
// depends on nothing of the session but its parameters keeps it.
func (b *BoundRoute) finish(r *plan.Route, a *Analyzer) *BoundRoute {
	if b == nil || a.Diagnostic || a.InfoSchema || showOf(b.Stmt) != nil || !r.Names.Empty() {
		return nil
	}
	return b
}

// Resolve places one execution: the shard its parameters name and the SQL to prepare there.
// ok is false when the route is not a single slot known from the parameters alone (several
// slots, a value the key's function refuses, a single table elsewhere, a changed session or
// snapshot): the caller then plans the statement in full, which answers those cases.
func (b *BoundRoute) Resolve(v ExecView, snap *rules.Snapshot, params []wire.Param) (shard *rules.Shard, sql string, cols introspect.Columns, ok bool) {
	if !b.holds(v, snap) || b.Multi {
		return nil, "", introspect.Columns{}, false
	}
	b.own()
	slot := 0
	if shard = b.Fixed; shard == nil {
		if slot, ok = b.slot(params); !ok {
			return nil, "", introspect.Columns{}, false
		}
		shard = b.sharded[0].Table.Scheme.SlotShard(slot)
	}
	if checkSingles(b.Refs, shard) != nil || !fillSessionVals(v, snap, b.vals) {
		return nil, "", introspect.Columns{}, false
	}
	sql, err := b.fill(func(t *rules.Table) string { return t.PhysicalName(slot) }, shard.Database)
	if err != nil {
		return nil, "", introspect.Columns{}, false
	}
	return shard, sql, introspect.ColumnsOf(b.DB0, shard), true
}

// own binds the statement's tree as its analysis did, at the route's first use: from then
// on the tree is the route's, which rewrites it at each execution.
func (b *BoundRoute) own() {
	if !b.owned {
		b.binds.redo(b.Stmt)
		b.owned = true
	}
}

// holds reports whether the route was planned under the session's snapshot, database,
// restore flags and table locks (while the session holds LOCK TABLES on sharded tables,
// slot tables are named bare: tableRef.bare).
func (b *BoundRoute) holds(v ExecView, snap *rules.Snapshot) bool {
	return b != nil && snap == b.Snap && v.DB == b.DB && v.Flags == b.Flags && b.Planner.Locked == v.Locked
}

// ExecView is what placing a prepared plan at EXECUTE reads of the session: the state the
// plan must have been planned under, and the session's values for its bind variables.
type ExecView struct {
	DB     string
	Flags  format.RestoreFlags
	Locked bool // LOCK TABLES on sharded tables
	Sticky bool // the session keeps its backend connections (FOUND_ROWS() is the backend's)
	Vals   SessionValues
}

// SessionValues gives the session's values of the functions a plan binds at execution
// (LAST_INSERT_ID(), DATABASE(), CONNECTION_ID(), VERSION(), the deadline variables).
type SessionValues interface {
	SessionValue(snap *rules.Snapshot, name string) (any, bool)
}

// fillSessionVals writes the session's values into the session value nodes vals; false
// for a value that is not filled in at execution (diagnostics).
func fillSessionVals(ev ExecView, snap *rules.Snapshot, vals []SessionVal) bool {
	for _, v := range vals {
		val, ok := ev.Vals.SessionValue(snap, v.Name)
		if !ok {
			return false
		}
		*v.Node = *ast.NewValueExpr(val, "", "").(*test_driver.ValueExpr)
	}
	return true
}

// ResolveWrite places an execution whose values send a write to several slots (an UPDATE
// or DELETE whose ? keys name several, a multi-row INSERT whose rows fall in several), or
// a multi-shard write that embeds session values (MultiRoute): the multi-shard write is
// planned on the statement's tree with the analysis PREPARE made of it, without parsing.
// Splitting restores each part from the tree, renamed per slot, as planning a fresh tree
// does; fill names the tree again for the next execution. ok is false when the values do
// not make a multi-shard write (resolve places one slot; a refused value is the full
// planning's to report).
func (b *BoundRoute) ResolveWrite(v ExecView, snap *rules.Snapshot, params []wire.Param) (*plan.MultiWrite, bool) {
	if !b.holds(v, snap) || b.Fixed != nil || !IsWrite(b.Stmt) {
		return nil, false
	}
	b.own()
	if !fillSessionVals(v, snap, b.vals) {
		return nil, false
	}
	a := b.Analysis
	m := a.ed.mark() // the splitting's edits: put back, the tree stays bound
	defer a.ed.undoTo(m)
	p, ok, err := b.Planner.planMultiWrite(plan.Attrs{Sticky: a.Sticky, Dynamic: a.dynamic, Diagnostic: a.Diagnostic}, b.Text, b.Stmt, a, params)
	w, multi := p.(*plan.MultiWrite)
	if !ok || err != nil || !multi {
		return nil, false
	}
	return w, true
}

// fill writes the statement with its bind variables filled in: each sharded table under
// the name phys gives it, schema qualifiers naming db. The text is the client's as long as
// nothing differs from it, as full planning leaves it.
func (b *BoundRoute) fill(phys func(*rules.Table) string, db string) (string, error) {
	defer b.ed.undoTo(0) // the tree as the analysis bound it, for the next execution
	rewrite := b.rewrite
	for i, r := range b.sharded {
		if name := phys(r.Table); name != b.logical[i] {
			b.ed.rename(r, name, b.alias || i >= b.top) // a subquery's table keeps its name as an alias
			rewrite = true
		}
	}
	for i, ref := range b.schemas {
		b.ed.name(ref, ast.NewCIStr(db))
		rewrite = rewrite || b.schemaL[i] != db
	}
	if !rewrite {
		return b.Text, nil
	}
	b.ed.nameFields(b.unnamed)
	return RestoreSQL(b.Flags, nil, b.Stmt)
}

// Explain describes the route with its bind variables unfilled (EXPLAIN SHARDS of a
// statement routed by its parameters): the shard of the slot the bound key names, and the
// SQL with the slot's physical table and database names and the session values as
// placeholders ('{last_insert_id}').
func (b *BoundRoute) Explain() ([]plan.Step, error) {
	b.own()
	for _, v := range b.vals {
		*v.Node = *ast.NewValueExpr("{"+v.Name+"}", "", "").(*test_driver.ValueExpr)
	}
	shard, db := "{shard of the bound key's slot}", "{slot's database}"
	if b.Fixed != nil {
		shard, db = b.Fixed.Name, b.Fixed.Database
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
func (b *BoundRoute) slot(params []wire.Param) (int, bool) {
	if b.insert {
		slots, err := InsertRowSlots(b.Stmt.(*ast.InsertStmt), b.sharded[0], params)
		if err != nil || len(distinct(slots)) != 1 {
			return 0, false
		}
		return slots[0], true
	}
	slot := -1
	for i, r := range b.sharded {
		vals, ok, err := b.Planner.keyValues(b.wheres[i], r, params)
		if err != nil || !ok {
			return 0, false
		}
		slots, err := slotsOf(r.Table, vals)
		if err != nil || len(slots) != 1 || (slot >= 0 && slots[0] != slot) || r.Table.Scheme != b.sharded[0].Table.Scheme {
			return 0, false
		}
		slot = slots[0]
	}
	return slot, slot >= 0
}

// SessionVal is a value of the session written into a statement: its node and what it is.
type SessionVal struct {
	Node *test_driver.ValueExpr
	Name string // last_insert_id, database, schema, connection_id, version, max_execution_time, max_statement_time
}

// DescribePrepared plans a prepared statement's tree st (of text text) at PREPARE, as
// every EXECUTE then reuses it (a bound route, a scatter template, kept branches: the
// session keeps what it returns): described, with no parameters bound (Describing). A
// statement refused for its subqueries is described from one shard (DescribeBound); a
// RETURNING clause cut off its text goes back on the plan (WithReturning).
func (pl *Planner) DescribePrepared(snap *rules.Snapshot, st ast.StmtNode, text, clause string) (plan.Primitive, error) {
	d := *pl
	d.Describing = true
	p, err := d.Plan(snap, st, text, nil)
	if errors.Is(err, ErrNestedUnpinned) {
		p, err = pl.DescribeBound(snap, st, err)
	}
	if err == nil {
		p, err = WithReturning(p, clause)
	}
	return p, err
}
