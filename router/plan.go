package router

import (
	"maps"
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// plan is where one statement goes and what is sent there.
type plan struct {
	shard   *rules.Shard
	sql     string
	sticky  bool // the statement leaves state in the backend session
	dynamic bool // it embeds session values that change (LAST_INSERT_ID(), DATABASE())
	// diagnostic: it asks about the previous statement (ROW_COUNT(), @@warning_count), so
	// it leaves the session's diagnostics as they are.
	diagnostic bool
	// names translates database names of a statement reading information_schema; empty
	// otherwise.
	names schemaNames
	// columns renames physical names in the result's column definitions.
	columns colNames
	// scatter: the statement runs on several shards and the proxy merges the results
	// (shard and sql are then unused).
	scatter *scatterPlan
	// branches of a multi-shard write (see split.go), the coordinator first; nil for a
	// statement that runs on shard alone. shard and sql then describe the first statement.
	branches []branch
	copies   bool // the branches write identical copies (broadcast): report one, not the sum
}

// restoreFlags keep string literals byte-exact (see DEPENDENCIES.md).
const restoreFlags = format.DefaultRestoreFlags | format.RestoreStringEscapeBackslash | format.RestoreStringWithoutDefaultCharset

// restore writes a rewritten statement back as SQL, as the session's sql_mode reads it.
func (s *Session) restore(n ast.Node) (string, error) {
	var b strings.Builder
	if err := n.Restore(format.NewRestoreCtx(s.restoreFlags, &b)); err != nil {
		return "", sqlerr.New(sqlerr.ErUnknownError, "restoring rewritten statement: %v", err)
	}
	return s.lists.expand(b.String()), nil
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
func (s *Session) plan(snap *rules.Snapshot, st ast.StmtNode, text string, params []wire.Param) (plan, error) {
	switch n := st.(type) {
	case *ast.CreateDatabaseStmt, *ast.DropDatabaseStmt, *ast.AlterDatabaseStmt:
		return plan{}, sqlerr.NotSupported("CREATE/ALTER/DROP DATABASE through the proxy: logical databases are defined in its configuration")
	case *ast.ProcedureInfo: // CREATE PROCEDURE: its body runs with the backend account's privileges
		if err := s.checkRoutineBody(snap, n.ProcedureBody); err != nil {
			return plan{}, err
		}
	case *ast.ShowStmt:
		if _, ok, _ := routineStatusQuery(n); ok { // answered from information_schema as a plain query only
			return plan{}, sqlerr.NotSupported("SHOW PROCEDURE/FUNCTION STATUS here (send it as a plain query)")
		}
	}
	if err := adminStatement(st); err != nil {
		return plan{}, err
	}
	a := &analyzer{s: s, snap: snap, ctes: map[string]bool{}, sources: map[*ast.TableName]*ast.TableSource{}}
	st.Accept(a)
	if a.err != nil {
		return plan{}, a.err
	}
	numberParams(a.markers)
	if len(s.locks) > 0 {
		for i := range a.refs {
			a.refs[i].bare = !a.qualifiers[a.refs[i].node.Name.L]
		}
	}
	if e, ok := st.(*ast.ExplainStmt); ok && explainable(e.Stmt) && a.sharded() {
		// A text EXPLAIN never gets here (execExplain plans its statement); a prepared one does.
		return plan{}, sqlerr.NotSupported("EXPLAIN of a statement on sharded tables as a prepared statement (send it as a plain query: the proxy then asks each shard that would run it)")
	}
	if s.db == "" && a.needsDB {
		return plan{}, sqlerr.New(sqlerr.ErNoDB, "No database selected")
	}
	db, err := s.statementDB(snap, a)
	if err != nil {
		return plan{}, err
	}
	p := plan{shard: db.DefaultShard, sql: text, sticky: a.sticky, dynamic: a.dynamic, diagnostic: a.diagnostic}
	show := showOf(st)
	switch {
	case show != nil && a.routed():
		p.shard, a.rewrite = showTarget(a.refs), true
	case a.routed():
		if ok, err := s.planMultiWrite(&p, st, a, params); ok || err != nil {
			return p, err
		}
		names := tableNames(a.refs)
		shard, err := s.routeSharded(st, a.refs, params)
		switch {
		case err == errScatter:
			shard, err = s.planScatter(st.(*ast.SelectStmt), a, params, &p)
			if err != nil {
				return plan{}, err
			}
			if p.scatter != nil {
				p.columns = columnNames(db, p.scatter.targets[0].shard)
				return p, nil
			}
		case err == errNeedsParams:
			// Prepare time: describe the statement from slot 0's physical table; each
			// execution is routed by its parameters.
			shard, p.dynamic = s.representative(st, a.refs), true
		case err != nil:
			return plan{}, err
		}
		p.shard = shard
		a.rewrite = a.rewrite || names != tableNames(a.refs)
	case a.infoSchema || show != nil:
		p.shard = infoSchemaShard(db, st, params)
	}
	for _, ref := range a.schemas {
		if phys := p.shard.Database; ref.O != phys {
			*ref = ast.NewCIStr(phys)
			a.rewrite = true
		}
	}
	for _, ref := range a.showDBs {
		if phys := p.shard.Database; *ref != phys {
			*ref = phys
			a.rewrite = true
		}
	}
	if a.infoSchema || show != nil {
		if p.names = s.schemaNames(snap, p.shard); !p.names.empty() {
			lr := &literalRewriter{names: p.names}
			st.Accept(lr)
			a.rewrite = a.rewrite || lr.changed
			p.dynamic = p.dynamic || lr.changed
		}
	}
	if a.infoSchema {
		hidden := slices.Sorted(maps.Keys(p.names.otherSlots))
		changed, err := s.filterInfoSchema(a.infoTables, a.sources, s.allowedSchemas(snap, p.shard), hidden)
		if err != nil {
			return plan{}, err
		}
		if changed {
			st.Accept(unqualifyInfoSchema{})
			a.rewrite = true
		}
	}
	if a.rewrite {
		for _, f := range a.unnamed {
			f.AsName = ast.NewCIStr(strings.TrimSpace(f.Text()))
		}
		sql, err := s.restore(st)
		if err != nil {
			return plan{}, err
		}
		p.sql = sql
	}
	p.columns = columnNames(db, p.shard)
	return p, nil
}

// statementDB is the logical database a statement works in: the one its qualified names
// name, else the session's, else the first the user may use.
func (s *Session) statementDB(snap *rules.Snapshot, a *analyzer) (*rules.Database, error) {
	var db *rules.Database
	if s.db != "" && (a.needsDB || len(a.dbs) == 0) {
		db, _ = snap.Database(s.db)
	}
	for _, ref := range a.dbs {
		if db == nil {
			db = ref
		} else if ref.DefaultShard != db.DefaultShard {
			return nil, sqlerr.NotSupported("a statement spanning databases %s and %s (each logical database has its own shards)", db.Name, ref.Name)
		}
	}
	if db == nil {
		db = s.anyDatabase(snap)
		if db == nil {
			return nil, sqlerr.New(sqlerr.ErDBAccessDenied, "Access denied for user '%s': no database is allowed", s.user)
		}
	}
	return db, nil
}

// representative is the shard a parameter-routed statement is prepared on: slot 0's.
func (s *Session) representative(st ast.StmtNode, refs []tableRef) *rules.Shard {
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
func (s *Session) anyDatabase(snap *rules.Snapshot) *rules.Database {
	u, ok := snap.User(s.user)
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
	s          *Session
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
	refs       []tableRef   // tables of logical databases
	schemas    []*ast.CIStr // schema qualifiers naming logical databases
	showDBs    []*string    // SHOW ... FROM db naming logical databases
	sources    map[*ast.TableName]*ast.TableSource
	qualifiers map[string]bool // table names and aliases that qualify column names
	err        error
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
		case "load_file":
			a.err = sqlerr.New(sqlerr.ErSpecificAccessDenied, "Access denied; you need (at least one of) the FILE privilege(s) for this operation")
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
		if val, ok := a.s.r.serverVar(v.Name); ok {
			a.rewrite = true
			return ast.NewValueExpr(val, "", ""), true
		}
	}
	if v, ok := n.(*ast.VariableExpr); ok && v.IsSystem && !v.IsGlobal {
		switch strings.ToLower(v.Name) {
		case "identity", "last_insert_id":
			a.rewrite, a.dynamic = true, true
			return ast.NewValueExpr(a.s.lastInsertID, "", ""), true
		case varMaxExecutionTime, varMaxStatementTime:
			a.rewrite, a.dynamic = true, true
			return ast.NewValueExpr(a.s.deadlineVarValue(v.Name), "", ""), true
		case "warning_count", "error_count":
			n := a.s.diag.count
			if strings.EqualFold(v.Name, "error_count") {
				n = a.s.diag.errors
			}
			a.rewrite, a.dynamic, a.diagnostic = true, true, true
			return ast.NewValueExpr(int64(n), "", ""), true
		}
	}
	if f, ok := n.(*ast.FuncCallExpr); ok {
		if v, ok := a.value(f); ok {
			a.rewrite = true
			a.dynamic = a.dynamic || (f.FnName.L != "connection_id" && f.FnName.L != "version")
			return ast.NewValueExpr(v, "", ""), true
		}
	}
	return n, true
}

// serverVar is the proxy's answer for server variables that describe the proxy itself,
// as its handshake and packet limit do (session or global).
func (r *Router) serverVar(name string) (any, bool) {
	switch strings.ToLower(name) {
	case "version":
		return r.version, r.version != ""
	case "max_allowed_packet":
		return r.maxPkt, r.maxPkt != 0
	}
	return nil, false
}

// value is the proxy's answer for functions whose backend answer would be wrong.
func (a *analyzer) value(f *ast.FuncCallExpr) (any, bool) {
	switch f.FnName.L {
	case "connection_id":
		return uint64(a.s.info.ConnID), true
	case "version":
		if a.s.r.version != "" {
			return a.s.r.version, true
		}
	case "last_insert_id":
		if len(f.Args) == 0 {
			return a.s.lastInsertID, true
		}
	case "database", "schema":
		if a.s.db == "" {
			return nil, true
		}
		return a.s.db, true
	case "row_count":
		a.diagnostic = true
		return a.s.diag.rowCount, true
	case "found_rows":
		if !a.s.sticky { // after SQL_CALC_FOUND_ROWS the backend connection knows better
			a.diagnostic = true
			return a.s.diag.foundRows, true
		}
	}
	return nil, false
}

// schemaRef checks a schema qualifier and rewrites a logical name to the physical one.
func (a *analyzer) schemaRef(schema *ast.CIStr) {
	if restrictedSchema(schema.O) {
		a.err = sqlerr.New(sqlerr.ErDBAccessDenied, "Access denied for user '%s' to database '%s'", a.s.user, schema.O)
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
	if u, ok := a.snap.User(a.s.user); !ok || !u.CanUse(db.Name) {
		a.err = sqlerr.New(sqlerr.ErDBAccessDenied, "Access denied for user '%s' to database '%s'", a.s.user, db.Name)
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
		if a.s.db == "" {
			return
		}
		db, _ = a.snap.Database(a.s.db)
	case strings.EqualFold(n.Schema.O, "information_schema") && !restrictedTable(n.Schema.O, n.Name.O):
		a.infoSchema = true
		a.infoTables = append(a.infoTables, n)
		return
	case restrictedTable(n.Schema.O, n.Name.O):
		a.err = sqlerr.New(sqlerr.ErSpecificAccessDenied, "Access denied; you need (at least one of) the PROCESS privilege(s) for this operation")
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

// showOf returns the SHOW statement st is (DESCRIBE t is one), or nil.
func showOf(st ast.StmtNode) *ast.ShowStmt {
	if e, ok := st.(*ast.ExplainStmt); ok {
		st = e.Stmt
	}
	show, _ := st.(*ast.ShowStmt)
	return show
}

// showTarget places a SHOW about a sharded or broadcast table (SHOW COLUMNS, INDEX, CREATE
// TABLE) on the shard of its first physical copy, preferring the default shard, under that
// copy's physical name; the rows come back with the logical name (see schemaNames).
func showTarget(refs []tableRef) *rules.Shard {
	pick := firstCopy(refs[0].table)
	rename(refs[0], pick.Table, false)
	return pick.Shard
}

// firstCopy is the physical copy of t that describes it: the first on the database's default
// shard, else the first of all.
func firstCopy(t *rules.Table) rules.Placement {
	ps := t.Placements()
	for _, p := range ps {
		if p.Shard == t.DB.DefaultShard {
			return p
		}
	}
	return ps[0]
}
