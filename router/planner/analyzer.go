package planner

import (
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/router/barrier"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

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
