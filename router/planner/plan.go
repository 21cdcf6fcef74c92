package planner

import (
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/router/barrier"
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
// The plan is a *plan.Route, or a *plan.Scatter (a SELECT over several shards) or a
// *plan.MultiWrite (a write over several); DDL fan-out and local answers are planned before
// (Session.planStatement). Plan edits st while it writes the shards' SQL and puts every edit
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
	return pl.finishRoute(snap, st, a, db, show, bound, r)
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

// finishRoute completes the route r of st to one shard: physical names, the SQL written
// back when anything was rewritten, the columns' logical names, the bound route kept.
func (pl *Planner) finishRoute(snap *rules.Snapshot, st ast.StmtNode, a *Analyzer, db *rules.Database, show *ast.ShowStmt, bound *BoundRoute, r plan.Route) (plan.Primitive, error) {
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

// Analyze is the privilege barrier's check of st (barrier.Statement, then the analyzer's
// walk, which asks barrier.Schema, Table and Function of every name and function and the
// rules of every other database) and the analysis planning starts from. It binds st: the
// session values it reads are written into the tree (SessionVals), for a caller that owns
// the tree and fills them in at each execution (a prepared statement's scatter template or
// multi-shard write); planning itself analyses with analyze and puts the tree back.
func (pl *Planner) Analyze(snap *rules.Snapshot, st ast.StmtNode) (*Analyzer, error) {
	return pl.analyze(snap, st)
}

// analyze is Analyze with its edits of st logged in the analysis (Analyzer.ed), for the
// caller to undo; the analysis is never nil.
func (pl *Planner) analyze(snap *rules.Snapshot, st ast.StmtNode) (*Analyzer, error) {
	a := pl.newAnalyzer(snap)
	if err := barrier.Statement(st); err != nil {
		return a, err
	}
	st.Accept(a)
	return a, a.err
}

// newAnalyzer is an empty analysis under snap.
func (pl *Planner) newAnalyzer(snap *rules.Snapshot) *Analyzer {
	return &Analyzer{Planner: pl, Snap: snap, Ctes: map[string]bool{}, Sources: map[*ast.TableName]*ast.TableSource{}}
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

// Analyzer walks a statement once: schema references, proxy-answered functions, and
// constructs that leave state in the backend session.
type Analyzer struct {
	Planner    *Planner
	Snap       *rules.Snapshot
	Ctes       map[string]bool
	dbs        []*rules.Database
	needsDB    bool
	Sticky     bool
	rewrite    bool
	dynamic    bool
	Diagnostic bool
	InfoSchema bool               // reads information_schema
	infoTables []*ast.TableName   // the information_schema tables it reads
	unnamed    []*ast.SelectField // fields named by their text, which a restore would change
	Markers    []*test_driver.ParamMarkerExpr
	// SessionVals are the values of the session written into the statement (bindValue).
	SessionVals []SessionVal
	Refs        []TableRef   // tables of logical databases
	schemas     []*ast.CIStr // schema qualifiers naming logical databases
	showDBs     []*string    // SHOW ... FROM db naming logical databases
	Sources     map[*ast.TableName]*ast.TableSource
	qualifiers  map[string]bool // table names and aliases that qualify column names
	err         error
	ed          edits // the edits of the statement's tree, planning's included (edits.go)
}

// sharded reports whether the statement names a sharded table.
func (a *Analyzer) sharded() bool {
	for _, r := range a.Refs {
		if r.Table.Kind == rules.KindSharded {
			return true
		}
	}
	return false
}

// routed reports whether sharding rules decide the statement's shard.
func (a *Analyzer) routed() bool {
	for _, r := range a.Refs {
		if r.Table.Kind != rules.KindSingle {
			return true
		}
	}
	return false
}

func (a *Analyzer) Enter(n ast.Node) (ast.Node, bool) {
	if a.err != nil {
		return n, true
	}
	switch n := n.(type) {
	case *ast.WithClause:
		for _, cte := range n.CTEs {
			a.Ctes[cte.Name.L] = true
		}
	case *ast.TableSource:
		if tn, ok := n.Source.(*ast.TableName); ok {
			a.Sources[tn] = n
		}
	case *ast.TableName:
		a.tableRef(n)
	case *ast.ShowStmt:
		a.show(n)
	case *ast.SelectField:
		if n.AsName.O == "" && n.Expr != nil && n.OriginalText() != "" && namedByText(n.Expr) {
			a.unnamed = append(a.unnamed, n)
		}
	case *ast.ColumnNameExpr:
		if n.Name.Schema.O != "" {
			a.schemaRef(&n.Name.Schema)
		}
		if n.Name.Table.L != "" {
			if a.qualifiers == nil {
				a.qualifiers = map[string]bool{}
			}
			a.qualifiers[n.Name.Table.L] = true
		}
	case *ast.FuncCallExpr:
		if n.Schema.O != "" {
			a.schemaRef(&n.Schema) // stored function or procedure (CALL db.p())
		}
		switch n.FnName.L {
		case "get_lock", "release_lock", "release_all_locks", "is_used_lock", "is_free_lock":
			a.Sticky = true
		}
		if err := barrier.Function(n.FnName.L); err != nil {
			a.err = err
		}
	case *ast.VariableExpr:
		if !n.IsSystem && n.Value != nil {
			a.Sticky = true // @x := ...
		}
		if alias, ok := VarAliases[strings.ToLower(n.Name)]; ok && n.IsSystem {
			set(&a.ed, &n.Name, alias)
			a.rewrite = true
		}
	case *ast.SelectStmt:
		if n.SelectIntoOpt != nil || (n.SelectStmtOpts != nil && n.SelectStmtOpts.CalcFoundRows) {
			a.Sticky = true
		}
	case *ast.CreateTableStmt:
		if n.TemporaryKeyword != ast.TemporaryNone {
			a.Sticky = true
		}
	case *ast.LockTablesStmt:
		a.Sticky = true
	case *test_driver.ParamMarkerExpr:
		a.Markers = append(a.Markers, n)
	}
	return n, false
}

// NumberParams gives each ? its position among the statement's parameters (the parser
// leaves Order at 0; bound values arrive in text order), in a tree the caller owns.
func NumberParams(ms []*test_driver.ParamMarkerExpr) {
	var ed edits
	numberParams(&ed, ms)
}

// numberParams is NumberParams with the edits logged in ed.
func numberParams(ed *edits, ms []*test_driver.ParamMarkerExpr) {
	slices.SortFunc(ms, func(a, b *test_driver.ParamMarkerExpr) int { return a.Offset - b.Offset })
	for i, m := range ms {
		ed.number(&m.Order, i)
	}
}

// numberParams numbers the statement's parameters (NumberParams), edits logged.
func (a *Analyzer) numberParams() { numberParams(&a.ed, a.Markers) }

func (a *Analyzer) Leave(n ast.Node) (ast.Node, bool) {
	if a.err != nil {
		return n, true
	}
	if v, ok := n.(*ast.VariableExpr); ok && v.IsSystem {
		if val, ok := a.Planner.serverVar(v.Name); ok {
			a.rewrite = true
			return a.ed.replaced(n, ast.NewValueExpr(val, "", "")), true
		}
	}
	if v, ok := n.(*ast.VariableExpr); ok && v.IsSystem && !v.IsGlobal {
		switch strings.ToLower(v.Name) {
		case "identity", "last_insert_id":
			a.rewrite, a.dynamic = true, true
			return a.ed.replaced(n, a.bindValue("last_insert_id", a.Planner.LastInsertID)), true
		case VarMaxExecutionTime, VarMaxStatementTime:
			a.rewrite, a.dynamic = true, true
			return a.ed.replaced(n, a.bindValue(strings.ToLower(v.Name), a.Planner.DeadlineVarValue(v.Name))), true
		case "warning_count", "error_count":
			n := a.Planner.Diag.Count
			if strings.EqualFold(v.Name, "error_count") {
				n = a.Planner.Diag.Errors
			}
			a.rewrite, a.dynamic, a.Diagnostic = true, true, true
			return a.ed.replaced(v, ast.NewValueExpr(int64(n), "", "")), true
		}
	}
	if f, ok := n.(*ast.SelectField); ok {
		a.typeSessionColumn(f) // diag.go
	}
	if f, ok := n.(*ast.FuncCallExpr); ok {
		if v, ok := a.value(f); ok {
			a.rewrite = true
			a.dynamic = a.dynamic || (f.FnName.L != "connection_id" && f.FnName.L != "version")
			return a.ed.replaced(f, a.bindValue(f.FnName.L, v)), true
		}
	}
	return n, true
}

// bindValue is the value node standing for a session value (LAST_INSERT_ID(), DATABASE(),
// @@max_execution_time, ...) in the statement, recorded as a bind variable that a prepared
// statement's bound route fills in again at each execution (bound.go).
func (a *Analyzer) bindValue(name string, v any) ast.ExprNode {
	n := ast.NewValueExpr(v, "", "")
	if ve, ok := n.(*test_driver.ValueExpr); ok {
		a.SessionVals = append(a.SessionVals, SessionVal{Node: ve, Name: name})
	}
	return n
}

// serverVar is the proxy's answer for server variables that describe the proxy itself,
// as its handshake and packet limit do (session or global).
func (pl *Planner) serverVar(name string) (any, bool) {
	switch strings.ToLower(name) {
	case "version":
		return pl.Version, pl.Version != ""
	case "max_allowed_packet":
		return pl.MaxPkt, pl.MaxPkt != 0
	}
	return nil, false
}

// value is the proxy's answer for functions whose backend answer would be wrong.
func (a *Analyzer) value(f *ast.FuncCallExpr) (any, bool) {
	switch f.FnName.L {
	case "connection_id":
		return uint64(a.Planner.ConnID), true
	case "version":
		if a.Planner.Version != "" {
			return a.Planner.Version, true
		}
	case "last_insert_id":
		if len(f.Args) == 0 {
			return a.Planner.LastInsertID, true
		}
	case "database", "schema":
		if a.Planner.DB == "" {
			return nil, true
		}
		return a.Planner.DB, true
	case "row_count":
		a.Diagnostic = true
		return a.Planner.Diag.RowCount, true
	case "found_rows":
		if !a.Planner.Sticky { // after SQL_CALC_FOUND_ROWS the backend connection knows better
			a.Diagnostic = true
			return a.Planner.Diag.FoundRows, true
		}
	}
	return nil, false
}

// schemaRef checks a schema qualifier and rewrites a logical name to the physical one.
func (a *Analyzer) schemaRef(schema *ast.CIStr) {
	if err := barrier.Schema(a.Planner.User, schema.O); err != nil {
		a.err = err
		return
	}
	if IsSystemSchema(schema.O) {
		return
	}
	db, ok := a.Snap.Database(schema.O)
	if !ok {
		a.err = sqlerr.New(sqlerr.ErBadDB, "Unknown database '%s'", schema.O)
		return
	}
	if u, ok := a.Snap.User(a.Planner.User); !ok || !u.CanUse(db.Name) {
		a.err = sqlerr.New(sqlerr.ErDBAccessDenied, "Access denied for user '%s' to database '%s'", a.Planner.User, db.Name)
		return
	}
	a.dbs = append(a.dbs, db)
	a.schemas = append(a.schemas, schema)
}

// tableRef resolves a table name against the rules.
func (a *Analyzer) tableRef(n *ast.TableName) {
	var db *rules.Database
	switch {
	case n.Schema.O == "":
		if a.Ctes[n.Name.L] {
			return
		}
		a.needsDB = true
		if a.Planner.DB == "" {
			return
		}
		db, _ = a.Snap.Database(a.Planner.DB)
	case strings.EqualFold(n.Schema.O, "information_schema"):
		if err := barrier.Table(n.Schema.O, n.Name.O); err != nil {
			a.err = err
			return
		}
		a.InfoSchema = true
		a.infoTables = append(a.infoTables, n)
		return
	case IsSystemSchema(n.Schema.O):
		a.schemaRef(&n.Schema) // refuses the restricted ones
		return
	default:
		before := len(a.dbs)
		a.schemaRef(&n.Schema)
		if a.err != nil || len(a.dbs) == before {
			return
		}
		db = a.dbs[len(a.dbs)-1]
	}
	if db == nil {
		return
	}
	ref := TableRef{Node: n, db: db, Table: db.Table(n.Name.O), alias: n.Name.L, source: a.Sources[n]}
	if ref.source != nil && ref.source.AsName.L != "" {
		ref.alias = ref.source.AsName.L
	}
	a.Refs = append(a.Refs, ref)
}

// show handles SHOW statements that name a database or need the current one.
func (a *Analyzer) show(n *ast.ShowStmt) {
	if n.Procedure != nil { // SHOW CREATE PROCEDURE [db.]name: the parser's visitor skips the name
		if n.Procedure.Schema.O != "" {
			a.schemaRef(&n.Procedure.Schema)
		} else {
			a.needsDB = true
		}
		return
	}
	if n.DBName != "" && n.Table != nil && n.Table.Schema.O == "" {
		// SHOW COLUMNS/INDEX FROM t FROM db: qualify the table, which is resolved next.
		a.ed.name(&n.Table.Schema, ast.NewCIStr(n.DBName))
		set(&a.ed, &n.DBName, "")
		return
	}
	if n.DBName != "" {
		cs := ast.NewCIStr(n.DBName)
		a.schemaRef(&cs)
		if a.err == nil {
			a.showDBs = append(a.showDBs, &n.DBName)
		}
		return
	}
	switch n.Tp {
	case ast.ShowTables, ast.ShowTableStatus, ast.ShowTriggers, ast.ShowEvents:
		a.needsDB = true
	}
}
