package router

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

// restoreFlags keep string literals byte-exact (see DEPENDENCIES.md).
const restoreFlags = format.DefaultRestoreFlags | format.RestoreStringEscapeBackslash | format.RestoreStringWithoutDefaultCharset

// restore writes a rewritten statement back as SQL, as the session's sql_mode reads it.
func (pl *planner) restore(n ast.Node) (string, error) {
	return restoreSQL(pl.restoreFlags, pl.lists, n)
}

// restoreSQL writes n back as SQL under flags (the session's: see restoreFlags), with the
// literal lists cut out before parsing put back (biglist.go).
func restoreSQL(flags format.RestoreFlags, lists bigLists, n ast.Node) (string, error) {
	var b strings.Builder
	if err := n.Restore(format.NewRestoreCtx(flags, &b)); err != nil {
		return "", sqlerr.New(sqlerr.ErUnknownError, "restoring rewritten statement: %v", err)
	}
	return lists.expand(b.String()), nil
}

func isSystemSchema(name string) bool {
	switch strings.ToLower(name) {
	case "information_schema", "mysql", "performance_schema", "sys":
		return true
	}
	return false
}

// plan decides where a statement goes and rewrites what must differ on the backend:
// physical table and schema names, and functions whose answer is the proxy's, not the
// backend connection's (CONNECTION_ID(), LAST_INSERT_ID(), DATABASE()). Statements on single
// tables go to their database's default shard; those naming sharded or broadcast tables are
// placed by routeSharded. params are a prepared statement's bound values (nil otherwise).
// The plan is a *plan.Route, or a *plan.Scatter (a SELECT over several shards) or a
// *plan.MultiWrite (a write over several); DDL fan-out and local answers are planned before
// (Session.planStatement).
func (pl *planner) plan(snap *rules.Snapshot, st ast.StmtNode, text string, params []wire.Param) (plan.Primitive, error) {
	if err := pl.refuse(snap, st); err != nil {
		return nil, err
	}
	a, err := pl.analyze(snap, st)
	if err != nil {
		return nil, err
	}
	numberParams(a.markers)
	if pl.locked {
		for i := range a.refs {
			a.refs[i].bare = !a.qualifiers[a.refs[i].node.Name.L]
		}
	}
	if e, ok := st.(*ast.ExplainStmt); ok && explainable(e.Stmt) && a.sharded() {
		// A text EXPLAIN never gets here (execExplain plans its statement); a prepared one does.
		return nil, sqlerr.NotSupported("EXPLAIN of a statement on sharded tables as a prepared statement (send it as a plain query: the proxy then asks each shard that would run it)")
	}
	if pl.db == "" && a.needsDB {
		return nil, sqlerr.New(sqlerr.ErNoDB, "No database selected")
	}
	db, err := pl.statementDB(snap, a)
	if err != nil {
		return nil, err
	}
	attrs := plan.Attrs{Sticky: a.sticky, Dynamic: a.dynamic, Diagnostic: a.diagnostic}
	r := plan.Route{Shard: db.DefaultShard, SQL: text} // on the stack until it is the plan
	var bound *boundRoute
	show := showOf(st)
	switch {
	case show != nil && a.routed():
		r.Shard, a.rewrite = showTarget(a.refs), true
	case a.routed():
		if w, ok, err := pl.planMultiWrite(attrs, text, st, a, params); ok || err != nil {
			return w, err
		}
		names := tableNames(a.refs)
		shard, err := pl.routeSharded(st, a.refs, params)
		switch {
		case err == errScatter:
			var sp *plan.Scatter
			if sp, shard, err = pl.planScatter(st.(*ast.SelectStmt), a, params, &attrs); err != nil {
				return nil, err
			}
			if sp != nil {
				sp.Attrs = attrs
				sp.Columns = introspect.ColumnsOf(db, sp.Targets[0].Shard)
				return sp, nil
			}
		case err == errNeedsParams:
			// Prepare time: describe the statement from slot 0's physical table; each
			// execution is routed by its parameters.
			bound = newBoundRoute(pl, snap, st, text, a, db)
			shard, attrs.Dynamic = pl.representative(st, a.refs), true
		case err != nil:
			return nil, err
		}
		r.Shard = shard
		a.rewrite = a.rewrite || names != tableNames(a.refs)
	case a.infoSchema || show != nil:
		r.Shard = introspect.Shard(db, st, params)
	}
	if pl.describing && bound == nil {
		bound = newFixedRoute(pl, snap, st, text, a, db, r.Shard) // session values only: bound.go
	}
	r.Attrs = attrs
	if err := pl.physicalNames(snap, st, a, show, &r); err != nil {
		return nil, err
	}
	if a.rewrite {
		for _, f := range a.unnamed {
			f.AsName = ast.NewCIStr(strings.TrimSpace(f.Text()))
		}
		sql, err := pl.restore(st)
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
func (pl *planner) refuse(snap *rules.Snapshot, st ast.StmtNode) error {
	switch n := st.(type) {
	case *ast.CreateDatabaseStmt, *ast.DropDatabaseStmt, *ast.AlterDatabaseStmt:
		return sqlerr.NotSupported("CREATE/ALTER/DROP DATABASE through the proxy: logical databases are defined in its configuration")
	case *ast.ProcedureInfo: // CREATE PROCEDURE: its body runs with the backend account's privileges
		if err := pl.checkRoutineBody(snap, n.ProcedureBody); err != nil {
			return err
		}
		return pl.checkProcedureScope(snap, n) // stored_sharded.go
	case *ast.ShowStmt:
		if _, ok, _ := routineStatusQuery(n); ok { // answered from information_schema as a plain query only
			return sqlerr.NotSupported("SHOW PROCEDURE/FUNCTION STATUS here (send it as a plain query)")
		}
	}
	return nil
}

// analyze is the privilege barrier's check of st (barrier.Statement, then the analyzer's
// walk, which asks barrier.Schema, Table and Function of every name and function and the
// rules of every other database) and the analysis planning starts from.
func (pl *planner) analyze(snap *rules.Snapshot, st ast.StmtNode) (*analyzer, error) {
	if err := barrier.Statement(st); err != nil {
		return nil, err
	}
	a := &analyzer{pl: pl, snap: snap, ctes: map[string]bool{}, sources: map[*ast.TableName]*ast.TableSource{}}
	st.Accept(a)
	return a, a.err
}

// physicalNames points the schema qualifiers and SHOW ... FROM of a statement placed on
// p.Shard at that shard's physical database, and translates a statement about
// information_schema or a SHOW (router/introspect): names in its literals, derived tables
// that keep the user's databases only. It records in a whether the statement was rewritten.
func (pl *planner) physicalNames(snap *rules.Snapshot, st ast.StmtNode, a *analyzer, show *ast.ShowStmt, p *plan.Route) error {
	for _, ref := range a.schemas {
		if phys := p.Shard.Database; ref.O != phys {
			*ref = ast.NewCIStr(phys)
			a.rewrite = true
		}
	}
	for _, ref := range a.showDBs {
		if phys := p.Shard.Database; *ref != phys {
			*ref = phys
			a.rewrite = true
		}
	}
	if a.infoSchema || show != nil {
		if p.Names = introspect.NamesOn(snap, pl.user, p.Shard); !p.Names.Empty() {
			changed := introspect.RewriteLiterals(st, p.Names)
			a.rewrite = a.rewrite || changed
			p.Dynamic = p.Dynamic || changed
		}
	}
	if a.infoSchema {
		allowed := introspect.AllowedSchemas(snap, pl.user, p.Shard)
		changed, err := introspect.Filter(a.infoTables, a.sources, allowed, p.Names.OtherSlots())
		if err != nil {
			return err
		}
		if changed {
			introspect.Unqualify(st)
			a.rewrite = true
		}
	}
	return nil
}

// statementDB is the logical database a statement works in: the one its qualified names
// name, else the session's, else the first the user may use.
func (pl *planner) statementDB(snap *rules.Snapshot, a *analyzer) (*rules.Database, error) {
	var db *rules.Database
	if pl.db != "" && (a.needsDB || len(a.dbs) == 0) {
		db, _ = snap.Database(pl.db)
	}
	for _, ref := range a.dbs {
		if db == nil {
			db = ref
		} else if ref.DefaultShard != db.DefaultShard {
			return nil, sqlerr.NotSupported("a statement spanning databases %s and %s (each logical database has its own shards)", db.Name, ref.Name)
		}
	}
	if db == nil {
		db = pl.anyDatabase(snap)
		if db == nil {
			return nil, sqlerr.New(sqlerr.ErDBAccessDenied, "Access denied for user '%s': no database is allowed", pl.user)
		}
	}
	return db, nil
}

// representative is the shard a parameter-routed statement is prepared on: slot 0's.
func (pl *planner) representative(st ast.StmtNode, refs []tableRef) *rules.Shard {
	_, isDelete := st.(*ast.DeleteStmt)
	_, isInsert := st.(*ast.InsertStmt)
	for _, r := range refs {
		if r.table.Kind == rules.KindSharded {
			rename(r, r.table.PhysicalName(0), !isDelete && !isInsert)
			return r.table.Scheme.SlotShard(0)
		}
	}
	return refs[0].db.DefaultShard
}

func tableNames(refs []tableRef) string {
	var b strings.Builder
	for _, r := range refs {
		b.WriteString(r.node.Name.O)
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

// anyDatabase is where statements that name no database go: the first one the user may use.
func (pl *planner) anyDatabase(snap *rules.Snapshot) *rules.Database {
	u, ok := snap.User(pl.user)
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

// analyzer walks a statement once: schema references, proxy-answered functions, and
// constructs that leave state in the backend session.
type analyzer struct {
	pl         *planner
	snap       *rules.Snapshot
	ctes       map[string]bool
	dbs        []*rules.Database
	needsDB    bool
	sticky     bool
	rewrite    bool
	dynamic    bool
	diagnostic bool
	infoSchema bool               // reads information_schema
	infoTables []*ast.TableName   // the information_schema tables it reads
	unnamed    []*ast.SelectField // fields named by their text, which a restore would change
	markers    []*test_driver.ParamMarkerExpr
	// sessionVals are the values of the session written into the statement (bindValue).
	sessionVals []sessionVal
	refs        []tableRef   // tables of logical databases
	schemas     []*ast.CIStr // schema qualifiers naming logical databases
	showDBs     []*string    // SHOW ... FROM db naming logical databases
	sources     map[*ast.TableName]*ast.TableSource
	qualifiers  map[string]bool // table names and aliases that qualify column names
	err         error
}

// sharded reports whether the statement names a sharded table.
func (a *analyzer) sharded() bool {
	for _, r := range a.refs {
		if r.table.Kind == rules.KindSharded {
			return true
		}
	}
	return false
}

// routed reports whether sharding rules decide the statement's shard.
func (a *analyzer) routed() bool {
	for _, r := range a.refs {
		if r.table.Kind != rules.KindSingle {
			return true
		}
	}
	return false
}

func (a *analyzer) Enter(n ast.Node) (ast.Node, bool) {
	if a.err != nil {
		return n, true
	}
	switch n := n.(type) {
	case *ast.WithClause:
		for _, cte := range n.CTEs {
			a.ctes[cte.Name.L] = true
		}
	case *ast.TableSource:
		if tn, ok := n.Source.(*ast.TableName); ok {
			a.sources[tn] = n
		}
	case *ast.TableName:
		a.tableRef(n)
	case *ast.ShowStmt:
		a.show(n)
	case *ast.SelectField:
		if n.AsName.O == "" && n.Expr != nil && n.Text() != "" && namedByText(n.Expr) {
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
			a.sticky = true
		}
		if err := barrier.Function(n.FnName.L); err != nil {
			a.err = err
		}
	case *ast.VariableExpr:
		if !n.IsSystem && n.Value != nil {
			a.sticky = true // @x := ...
		}
		if alias, ok := varAliases[strings.ToLower(n.Name)]; ok && n.IsSystem {
			n.Name, a.rewrite = alias, true
		}
	case *ast.SelectStmt:
		if n.SelectIntoOpt != nil || (n.SelectStmtOpts != nil && n.SelectStmtOpts.CalcFoundRows) {
			a.sticky = true
		}
	case *ast.CreateTableStmt:
		if n.TemporaryKeyword != ast.TemporaryNone {
			a.sticky = true
		}
	case *ast.LockTablesStmt:
		a.sticky = true
	case *test_driver.ParamMarkerExpr:
		a.markers = append(a.markers, n)
	}
	return n, false
}

// numberParams gives each ? its position among the statement's parameters (the parser
// leaves Order at 0; bound values arrive in text order).
func numberParams(ms []*test_driver.ParamMarkerExpr) {
	slices.SortFunc(ms, func(a, b *test_driver.ParamMarkerExpr) int { return a.Offset - b.Offset })
	for i, m := range ms {
		m.Order = i
	}
}

func (a *analyzer) Leave(n ast.Node) (ast.Node, bool) {
	if a.err != nil {
		return n, true
	}
	if v, ok := n.(*ast.VariableExpr); ok && v.IsSystem {
		if val, ok := a.pl.serverVar(v.Name); ok {
			a.rewrite = true
			return ast.NewValueExpr(val, "", ""), true
		}
	}
	if v, ok := n.(*ast.VariableExpr); ok && v.IsSystem && !v.IsGlobal {
		switch strings.ToLower(v.Name) {
		case "identity", "last_insert_id":
			a.rewrite, a.dynamic = true, true
			return a.bindValue("last_insert_id", a.pl.lastInsertID), true
		case varMaxExecutionTime, varMaxStatementTime:
			a.rewrite, a.dynamic = true, true
			return a.bindValue(strings.ToLower(v.Name), a.pl.deadlineVarValue(v.Name)), true
		case "warning_count", "error_count":
			n := a.pl.diag.count
			if strings.EqualFold(v.Name, "error_count") {
				n = a.pl.diag.errors
			}
			a.rewrite, a.dynamic, a.diagnostic = true, true, true
			return ast.NewValueExpr(int64(n), "", ""), true
		}
	}
	if f, ok := n.(*ast.SelectField); ok {
		a.typeSessionColumn(f) // diag.go
	}
	if f, ok := n.(*ast.FuncCallExpr); ok {
		if v, ok := a.value(f); ok {
			a.rewrite = true
			a.dynamic = a.dynamic || (f.FnName.L != "connection_id" && f.FnName.L != "version")
			return a.bindValue(f.FnName.L, v), true
		}
	}
	return n, true
}

// bindValue is the value node standing for a session value (LAST_INSERT_ID(), DATABASE(),
// @@max_execution_time, ...) in the statement, recorded as a bind variable that a prepared
// statement's bound route fills in again at each execution (bound.go).
func (a *analyzer) bindValue(name string, v any) ast.ExprNode {
	n := ast.NewValueExpr(v, "", "")
	if ve, ok := n.(*test_driver.ValueExpr); ok {
		a.sessionVals = append(a.sessionVals, sessionVal{node: ve, name: name})
	}
	return n
}

// serverVar is the proxy's answer for server variables that describe the proxy itself,
// as its handshake and packet limit do (session or global).
func (pl *planner) serverVar(name string) (any, bool) {
	switch strings.ToLower(name) {
	case "version":
		return pl.version, pl.version != ""
	case "max_allowed_packet":
		return pl.maxPkt, pl.maxPkt != 0
	}
	return nil, false
}

// value is the proxy's answer for functions whose backend answer would be wrong.
func (a *analyzer) value(f *ast.FuncCallExpr) (any, bool) {
	switch f.FnName.L {
	case "connection_id":
		return uint64(a.pl.connID), true
	case "version":
		if a.pl.version != "" {
			return a.pl.version, true
		}
	case "last_insert_id":
		if len(f.Args) == 0 {
			return a.pl.lastInsertID, true
		}
	case "database", "schema":
		if a.pl.db == "" {
			return nil, true
		}
		return a.pl.db, true
	case "row_count":
		a.diagnostic = true
		return a.pl.diag.rowCount, true
	case "found_rows":
		if !a.pl.sticky { // after SQL_CALC_FOUND_ROWS the backend connection knows better
			a.diagnostic = true
			return a.pl.diag.foundRows, true
		}
	}
	return nil, false
}

// schemaRef checks a schema qualifier and rewrites a logical name to the physical one.
func (a *analyzer) schemaRef(schema *ast.CIStr) {
	if err := barrier.Schema(a.pl.user, schema.O); err != nil {
		a.err = err
		return
	}
	if isSystemSchema(schema.O) {
		return
	}
	db, ok := a.snap.Database(schema.O)
	if !ok {
		a.err = sqlerr.New(sqlerr.ErBadDB, "Unknown database '%s'", schema.O)
		return
	}
	if u, ok := a.snap.User(a.pl.user); !ok || !u.CanUse(db.Name) {
		a.err = sqlerr.New(sqlerr.ErDBAccessDenied, "Access denied for user '%s' to database '%s'", a.pl.user, db.Name)
		return
	}
	a.dbs = append(a.dbs, db)
	a.schemas = append(a.schemas, schema)
}

// tableRef resolves a table name against the rules.
func (a *analyzer) tableRef(n *ast.TableName) {
	var db *rules.Database
	switch {
	case n.Schema.O == "":
		if a.ctes[n.Name.L] {
			return
		}
		a.needsDB = true
		if a.pl.db == "" {
			return
		}
		db, _ = a.snap.Database(a.pl.db)
	case strings.EqualFold(n.Schema.O, "information_schema"):
		if err := barrier.Table(n.Schema.O, n.Name.O); err != nil {
			a.err = err
			return
		}
		a.infoSchema = true
		a.infoTables = append(a.infoTables, n)
		return
	case isSystemSchema(n.Schema.O):
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
	ref := tableRef{node: n, db: db, table: db.Table(n.Name.O), alias: n.Name.L, source: a.sources[n]}
	if ref.source != nil && ref.source.AsName.L != "" {
		ref.alias = ref.source.AsName.L
	}
	a.refs = append(a.refs, ref)
}

// show handles SHOW statements that name a database or need the current one.
func (a *analyzer) show(n *ast.ShowStmt) {
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
		n.Table.Schema, n.DBName = ast.NewCIStr(n.DBName), ""
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
