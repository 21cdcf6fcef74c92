package planner

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"

	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Restore writes a rewritten statement back as SQL, as the session's sql_mode reads it.
func (pl *Planner) Restore(n ast.Node) (string, error) {
	return RestoreSQL(pl.RestoreFlags, pl.Lists, n)
}

// RestoreSQL writes n back as SQL under flags (the session's: see restoreFlags), with the
// literal lists cut out before parsing put back (biglist.go).
func RestoreSQL(flags format.RestoreFlags, lists BigLists, n ast.Node) (string, error) {
	var b strings.Builder
	if err := n.Restore(format.NewRestoreCtx(flags, &b)); err != nil {
		return "", sqlerr.New(sqlerr.ErUnknownError, "restoring rewritten statement: %v", err)
	}
	return lists.Expand(b.String()), nil
}

// IsSystemSchema reports whether name is one of the server's own schemas
// (information_schema, mysql, performance_schema, sys), whatever its case.
func IsSystemSchema(name string) bool {
	switch strings.ToLower(name) {
	case "information_schema", "mysql", "performance_schema", "sys":
		return true
	}
	return false
}

// Plan decides where a statement goes and writes what must differ on the backend:
// physical table and schema names, and functions whose answer is the proxy's, not the
// backend connection's (CONNECTION_ID(), LAST_INSERT_ID(), DATABASE()). Statements on single
// tables go to their database's default shard; those naming sharded or broadcast tables are
// placed by routeSharded. params are a prepared statement's bound values (nil otherwise).
// The plan is a *plan.Route, a *plan.Passthrough (a route that sends text as it is and binds
// nothing), a *plan.Scatter (a SELECT over several shards) or a *plan.MultiWrite (a write
// over several); DDL fan-out and local answers are planned before
// (PlanStatement). Plan edits st while it writes the shards' SQL and puts every edit
// back before it returns (edits.go): st is as the caller gave it, and a bound route the plan
// holds makes the analysis' edits again on it at its first execution (bound.go).
func (pl *Planner) Plan(snap *rules.Snapshot, st ast.StmtNode, text string, params []wire.Param) (plan.Primitive, error) {
	if err := pl.refuse(snap, st); err != nil {
		return nil, err
	}
	a, err := pl.analyze(snap, st)
	defer a.ed.undo(st) // everything below edits st through a.ed
	if err != nil {
		return nil, err
	}
	a.numberParams()
	binds := a.ed.mark() // the analysis' edits: a bound route makes them again
	if err := pl.checkAnalyzed(st, a); err != nil {
		return nil, err
	}
	db, err := pl.StatementDB(snap, a)
	if err != nil {
		return nil, err
	}
	attrs := plan.Attrs{Sticky: a.Sticky, Dynamic: a.dynamic, Diagnostic: a.Diagnostic}
	r := plan.Route{Shard: db.DefaultShard, SQL: text} // on the stack until it is the plan
	var bound *BoundRoute
	show := showOf(st)
	switch {
	case show != nil && a.routed():
		r.Shard, a.rewrite = showTarget(&a.ed, a.Refs), true
	case a.routed():
		p, done, b, err := pl.placeRouted(snap, st, text, params, a, db, binds, &attrs)
		if done || err != nil {
			return p, err
		}
		r.Shard, bound = b.shard, b.route
	case a.InfoSchema || show != nil:
		r.Shard = introspect.Shard(db, st, params)
	}
	if pl.Describing && bound == nil {
		bound = newFixedRoute(pl, snap, st, text, a, db, r.Shard, binds) // session values only: bound.go
	}
	r.Attrs = attrs
	return pl.finishRoute(snap, st, text, a, db, show, bound, r)
}

// checkAnalyzed refuses what the analysis of st shows no plan can send, and names the slot
// tables of a session holding table locks bare (TableRef.bare).
func (pl *Planner) checkAnalyzed(st ast.StmtNode, a *Analyzer) error {
	if pl.Locked {
		for i := range a.Refs {
			a.Refs[i].bare = !a.qualifiers[a.Refs[i].Node.Name.L]
		}
	}
	if e, ok := st.(*ast.ExplainStmt); ok && Explainable(e.Stmt) && a.sharded() {
		// A text EXPLAIN never gets here (execExplain plans its statement); a prepared one does.
		return sqlerr.NotSupported("EXPLAIN of a statement on sharded tables as a prepared statement (send it as a plain query: the proxy then asks each shard that would run it)")
	}
	if pl.DB == "" && a.needsDB {
		return sqlerr.New(sqlerr.ErNoDB, "No database selected")
	}
	return nil
}

// placed is where placeRouted put a statement it did not plan whole: its shard, and the
// route of a statement routed by its ? keys at each execution (nil for none).
type placed struct {
	shard *rules.Shard
	route *BoundRoute
}

// placeRouted places a statement whose sharded or broadcast tables decide its shard. done
// reports that p is the plan (a write over several shards, a SELECT over several: attrs
// are then its attributes); otherwise the statement goes to one shard, renamed for it.
func (pl *Planner) placeRouted(snap *rules.Snapshot, st ast.StmtNode, text string, params []wire.Param, a *Analyzer, db *rules.Database, binds int, attrs *plan.Attrs) (p plan.Primitive, done bool, at placed, err error) {
	if w, ok, err := pl.planMultiWrite(*attrs, text, st, a, params); ok || err != nil {
		return w, true, placed{}, err
	}
	names := tableNames(a.Refs)
	shard, err := pl.routeSharded(&a.ed, st, a.Refs, params)
	switch {
	case err == errScatter:
		var sp *plan.Scatter
		if sp, shard, err = pl.planScatter(st.(*ast.SelectStmt), a, params, attrs); err != nil {
			return nil, true, placed{}, err
		}
		if sp != nil {
			sp.Attrs = *attrs
			sp.Columns = introspect.ColumnsOf(db, sp.Targets[0].Shard)
			return sp, true, placed{}, nil
		}
	case err == errNeedsParams:
		// Prepare time: describe the statement from slot 0's physical table; each
		// execution is routed by its parameters.
		at.route = newBoundRoute(pl, snap, st, text, a, db, binds)
		shard, attrs.Dynamic = pl.representative(&a.ed, st, a.Refs), true
	case err != nil:
		return nil, true, placed{}, err
	}
	at.shard = shard
	a.rewrite = a.rewrite || names != tableNames(a.Refs)
	return nil, false, at, nil
}

// finishRoute completes the route r of st (whose text is text) to one shard: physical
// names, the SQL written back when anything was rewritten, the columns' logical names, the
// bound route kept; a Passthrough when it sends text unchanged and binds nothing.
func (pl *Planner) finishRoute(snap *rules.Snapshot, st ast.StmtNode, text string, a *Analyzer, db *rules.Database, show *ast.ShowStmt, bound *BoundRoute, r plan.Route) (plan.Primitive, error) {
	if err := pl.physicalNames(snap, st, a, show, &r); err != nil {
		return nil, err
	}
	if a.rewrite {
		a.ed.nameFields(a.unnamed)
		sql, err := pl.Restore(st)
		if err != nil {
			return nil, err
		}
		r.SQL = sql
	}
	r.Columns = introspect.ColumnsOf(db, r.Shard)
	if b := bound.finish(&r, a); b != nil { // not r.Bound = bound.finish(...): a nil *boundRoute is no nil Binding
		r.Bound = b
	}
	if r.Bound == nil && r.SQL == text {
		return &plan.Passthrough{Route: r}, nil // nothing rewritten, nothing bound
	}
	out := new(plan.Route)
	*out = r
	return out, nil
}

// refuse rejects what no plan sends: database DDL (logical databases are configured), a
// CREATE PROCEDURE whose body or scope the proxy cannot vouch for, and SHOW PROCEDURE STATUS
// outside a plain query.
func (pl *Planner) refuse(snap *rules.Snapshot, st ast.StmtNode) error {
	switch n := st.(type) {
	case *ast.CreateDatabaseStmt, *ast.DropDatabaseStmt, *ast.AlterDatabaseStmt:
		return sqlerr.NotSupported("CREATE/ALTER/DROP DATABASE through the proxy: logical databases are defined in its configuration")
	case *ast.ProcedureInfo: // CREATE PROCEDURE: its body runs with the backend account's privileges
		if err := pl.CheckRoutineBody(snap, n.ProcedureBody); err != nil {
			return err
		}
		return pl.checkProcedureScope(snap, n) // stored_sharded.go
	case *ast.ShowStmt:
		if _, ok, _ := RoutineStatusQuery(n); ok { // answered from information_schema as a plain query only
			return sqlerr.NotSupported("SHOW PROCEDURE/FUNCTION STATUS here (send it as a plain query)")
		}
	}
	return nil
}

// physicalNames points the schema qualifiers and SHOW ... FROM of a statement placed on
// p.Shard at that shard's physical database, and translates a statement about
// information_schema or a SHOW (router/introspect): names in its literals, derived tables
// that keep the user's databases only. It records in a whether the statement was rewritten.
func (pl *Planner) physicalNames(snap *rules.Snapshot, st ast.StmtNode, a *Analyzer, show *ast.ShowStmt, p *plan.Route) error {
	for _, ref := range a.schemas {
		if phys := p.Shard.Database; ref.O != phys {
			a.ed.name(ref, ast.NewCIStr(phys))
			a.rewrite = true
		}
	}
	for _, ref := range a.showDBs {
		if phys := p.Shard.Database; *ref != phys {
			set(&a.ed, ref, phys)
			a.rewrite = true
		}
	}
	if a.InfoSchema || show != nil {
		if p.Names = introspect.NamesOn(snap, pl.User, p.Shard); !p.Names.Empty() {
			changed := introspect.RewriteLiterals(st, p.Names, a.ed.replaced)
			a.rewrite = a.rewrite || changed
			p.Dynamic = p.Dynamic || changed
		}
	}
	if a.InfoSchema {
		allowed := introspect.AllowedSchemas(snap, pl.User, p.Shard)
		changed, err := introspect.Filter(a.infoTables, a.Sources, allowed, p.Names.OtherSlots(), a.ed.source)
		if err != nil {
			return err
		}
		if changed {
			introspect.Unqualify(st, a.ed.name)
			a.rewrite = true
		}
	}
	return nil
}

// StatementDB is the logical database a statement works in: the one its qualified names
// name, else the session's, else the first the user may use.
func (pl *Planner) StatementDB(snap *rules.Snapshot, a *Analyzer) (*rules.Database, error) {
	var db *rules.Database
	if pl.DB != "" && (a.needsDB || len(a.dbs) == 0) {
		db, _ = snap.Database(pl.DB)
	}
	for _, ref := range a.dbs {
		if db == nil {
			db = ref
		} else if ref.DefaultShard != db.DefaultShard {
			return nil, sqlerr.NotSupported("a statement spanning databases %s and %s (each logical database has its own shards)", db.Name, ref.Name)
		}
	}
	if db == nil {
		db = pl.AnyDatabase(snap)
		if db == nil {
			return nil, sqlerr.New(sqlerr.ErDBAccessDenied, "Access denied for user '%s': no database is allowed", pl.User)
		}
	}
	return db, nil
}

// representative is the shard a parameter-routed statement is prepared on: slot 0's.
func (pl *Planner) representative(ed *edits, st ast.StmtNode, refs []TableRef) *rules.Shard {
	_, isDelete := st.(*ast.DeleteStmt)
	_, isInsert := st.(*ast.InsertStmt)
	for _, r := range refs {
		if r.Table.Kind == rules.KindSharded {
			ed.rename(r, r.Table.PhysicalName(0), !isDelete && !isInsert)
			return r.Table.Scheme.SlotShard(0)
		}
	}
	return refs[0].db.DefaultShard
}

func tableNames(refs []TableRef) string {
	var b strings.Builder
	for _, r := range refs {
		b.WriteString(r.Node.Name.O)
		b.WriteByte(0)
	}
	return b.String()
}

// namedByText reports whether MySQL names a result column after the expression's source
// text, which a restore would change (COUNT(*) becomes COUNT(1), @@x becomes @@`x`). Column
// references are named after the column and literals after their value: restoring keeps
// those names, so they get no alias.
func namedByText(e ast.ExprNode) bool {
	switch e.(type) {
	case *ast.ColumnNameExpr, ast.ValueExpr, ast.ParamMarkerExpr:
		return false
	}
	return true
}

// AnyDatabase is where statements that name no database go: the first one the user may use.
func (pl *Planner) AnyDatabase(snap *rules.Snapshot) *rules.Database {
	u, ok := snap.User(pl.User)
	if !ok {
		return nil
	}
	for _, name := range snap.DatabaseNames() {
		if u.CanUse(name) {
			db, _ := snap.Database(name)
			return db
		}
	}
	return nil
}
