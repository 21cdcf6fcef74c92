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
// execution. It holds only for the snapshot, current database and restore flags it was
// planned under; a statement that asks about the previous one (diagnostics), reads
// information_schema, or is a multi-shard write or a scatter gets none and is planned again
// at each execution.
type boundRoute struct {
	snap    *rules.Snapshot
	pl      *planner // the prepare-time view it was planned with (reads key values)
	db      string   // the session's database it was planned under
	flags   format.RestoreFlags
	st      ast.StmtNode
	text    string     // the text planned (sent as is when nothing is renamed)
	refs    []tableRef // every table of a logical database the statement names
	sharded []tableRef // the sharded ones, in the order routeSharded reads them
	logical []string   // each sharded table's name as the client wrote it
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
}

// newBoundRoute records a statement routed by its parameters, after its analysis and before
// the prepare-time plan renames anything (what the analysis rewrote is the same at every
// execution). It returns nil for statements it cannot route alone.
func newBoundRoute(pl *planner, snap *rules.Snapshot, st ast.StmtNode, text string, a *analyzer, db *rules.Database) *boundRoute {
	b := &boundRoute{snap: snap, pl: pl, db: pl.db, flags: pl.restoreFlags, st: st, text: text, refs: a.refs, db0: db}
	_, isDelete := st.(*ast.DeleteStmt)
	b.alias = !isDelete
	top := topLevelTables(st)
	for _, r := range a.refs {
		switch {
		case r.table.Kind != rules.KindSharded:
		case !top[r.node]:
			return nil // in a subquery: its own WHERE must pin it too (routeNested, at each execution)
		default:
			b.sharded = append(b.sharded, r)
			b.logical = append(b.logical, r.node.Name.O)
		}
	}
	if len(b.sharded) == 0 {
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
	for _, ref := range a.schemas {
		b.schemas = append(b.schemas, ref)
		b.schemaL = append(b.schemaL, ref.O)
	}
	b.unnamed, b.rewrite, b.vals = a.unnamed, a.rewrite, a.sessionVals
	return b
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
func (b *boundRoute) resolve(s *Session, snap *rules.Snapshot, params []wire.Param) (shard *rules.Shard, sql string, cols introspect.Columns, ok bool) {
	if b == nil || snap != b.snap || s.db != b.db || s.vars.restoreFlags != b.flags {
		return nil, "", introspect.Columns{}, false
	}
	slot, ok := b.slot(params)
	if !ok {
		return nil, "", introspect.Columns{}, false
	}
	shard = b.sharded[0].table.Scheme.SlotShard(slot)
	if checkSingles(b.refs, shard) != nil {
		return nil, "", introspect.Columns{}, false
	}
	for _, v := range b.vals {
		val, ok := s.sessionValue(snap, v.name)
		if !ok {
			return nil, "", introspect.Columns{}, false
		}
		*v.node = *ast.NewValueExpr(val, "", "").(*test_driver.ValueExpr)
	}
	sql, err := b.fill(func(t *rules.Table) string { return t.PhysicalName(slot) }, shard.Database)
	if err != nil {
		return nil, "", introspect.Columns{}, false
	}
	return shard, sql, introspect.ColumnsOf(b.db0, shard), true
}

// fill writes the statement with its bind variables filled in: each sharded table under
// the name phys gives it, schema qualifiers naming db. The text is the client's as long as
// nothing differs from it, as full planning leaves it.
func (b *boundRoute) fill(phys func(*rules.Table) string, db string) (string, error) {
	rewrite := b.rewrite
	for i, r := range b.sharded {
		if name := phys(r.table); name != b.logical[i] {
			rename(r, name, b.alias)
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
// SQL with the slot's physical table and database names as placeholders.
func (b *boundRoute) Explain() ([]plan.Step, error) {
	sql, err := b.fill(func(t *rules.Table) string {
		if t.TablePerSlot {
			return t.Name + "_{slot}"
		}
		return t.Name
	}, "{slot's database}")
	if err != nil {
		return nil, err
	}
	return []plan.Step{{Step: "route", Shard: "{shard of the bound key's slot}", SQL: sql}}, nil
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
	where, slot := whereOf(b.st), -1
	for _, r := range b.sharded {
		vals, ok, err := b.pl.keyValues(where, r, params)
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

// rebind plans a prepared statement again, as PREPARE did, under a snapshot that replaced the
// one its route was planned under, and returns its new route (nil when the statement is no
// longer routed by its parameters alone, or no longer plans: EXECUTE then plans it in full
// and reports why).
func (s *Session) rebind(snap *rules.Snapshot, st *Stmt) *boundRoute {
	node, err := s.parseOne(st.text)
	if err != nil {
		return nil
	}
	p, err := s.describe(snap, node, st.text)
	if err != nil {
		return nil
	}
	return boundOf(p)
}

// boundOf is the bound route of a prepare-time plan, nil when it has none.
func boundOf(p plan.Primitive) *boundRoute {
	if r, ok := p.(*plan.Route); ok {
		b, _ := r.Bound.(*boundRoute)
		return b
	}
	return nil
}
