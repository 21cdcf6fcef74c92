package planner

import (
	"errors"
	"regexp"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// ShowDatabases answers SHOW DATABASES with the logical databases the user may use.
func (pl *Planner) ShowDatabases(snap *rules.Snapshot, n *ast.ShowStmt) (*plan.Local, error) {
	if n.Where != nil {
		return nil, sqlerr.NotSupported("SHOW DATABASES WHERE (use LIKE)")
	}
	title := "Database"
	var match func(string) bool
	if n.Pattern != nil {
		v, ok := n.Pattern.Pattern.(*test_driver.ValueExpr)
		if !ok {
			return nil, sqlerr.NotSupported("SHOW DATABASES LIKE with a non-literal pattern")
		}
		pat := v.GetString()
		title += " (" + pat + ")"
		match = LikeRegexp(pat).MatchString
	}
	u, _ := snap.User(pl.User)
	names := []string{"information_schema"}
	for _, db := range snap.DatabaseNames() {
		if u != nil && u.CanUse(db) {
			names = append(names, db)
		}
	}
	var rows [][]*string
	for _, name := range names {
		if match == nil || match(name) {
			rows = append(rows, []*string{&name})
		}
	}
	col := wire.Column{
		Schema: "information_schema", Table: "SCHEMATA", OrgTable: "SCHEMATA", Name: title, OrgName: "SCHEMA_NAME",
		Charset: 45, Length: 256, Type: mysql.MYSQL_TYPE_VAR_STRING, Flags: mysql.NOT_NULL_FLAG,
	}
	return &plan.Local{What: "SHOW DATABASES", Columns: []wire.Column{col}, Rows: rows}, nil
}

// LikeRegexp compiles a SQL LIKE pattern (case-insensitive, as for utf8mb4_general_ci).
func LikeRegexp(pat string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?is)^")
	esc := false
	if strings.HasSuffix(pat, `\`) && !strings.HasSuffix(pat, `\\`) {
		pat += `\` // a trailing escape character is literal, as in MySQL
	}
	for _, r := range pat {
		switch {
		case esc:
			b.WriteString(regexp.QuoteMeta(string(r)))
			esc = false
		case r == '\\':
			esc = true
		case r == '%':
			b.WriteString(".*")
		case r == '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
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
// copy's physical name; the rows come back with the logical name (see introspect.Names).
func showTarget(ed *edits, refs []TableRef) *rules.Shard {
	pick := FirstCopy(refs[0].Table)
	ed.rename(refs[0], pick.Table, false)
	return pick.Shard
}

// FirstCopy is the physical copy of t that describes it: the first on the database's default
// shard, else the first of all.
func FirstCopy(t *rules.Table) rules.Placement {
	ps := t.Placements()
	for _, p := range ps {
		if p.Shard == t.DB.DefaultShard {
			return p
		}
	}
	return ps[0]
}

// RoutineStatusQuery is the query on information_schema a SHOW PROCEDURE/FUNCTION STATUS
// [LIKE 'pattern' | WHERE expr] stands for: the same columns, in the same order. ok is false
// for other statements.
func RoutineStatusQuery(n *ast.ShowStmt) (sel *ast.SelectStmt, ok bool, err error) {
	switch n.Tp {
	case ast.ShowProcedureStatus:
		return RoutinesOfKind(n, "PROCEDURE")
	case ast.ShowFunctionStatus:
		return RoutinesOfKind(n, "FUNCTION")
	}
	return nil, false, nil
}

// RoutinesOfKind is routineStatusQuery for routines of kind (a ROUTINE_TYPE).
func RoutinesOfKind(n *ast.ShowStmt, kind string) (sel *ast.SelectStmt, ok bool, err error) {
	// A parser of its own: the session's still holds the statements of this query.
	st, err := parser.New().ParseOneStmt("SELECT * FROM (SELECT ROUTINE_SCHEMA AS `Db`, ROUTINE_NAME AS `Name`, "+
		"ROUTINE_TYPE AS `Type`, DEFINER AS `Definer`, LAST_ALTERED AS `Modified`, CREATED AS `Created`, "+
		"SECURITY_TYPE AS `Security_type`, ROUTINE_COMMENT AS `Comment`, CHARACTER_SET_CLIENT AS `character_set_client`, "+
		"COLLATION_CONNECTION AS `collation_connection`, DATABASE_COLLATION AS `Database Collation` "+
		"FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = '"+kind+"') AS `routines` ORDER BY `Db`, `Name`", "", "")
	if err != nil {
		return nil, true, sqlerr.New(sqlerr.ErUnknownError, "router: SHOW %s STATUS: %v", kind, err)
	}
	sel = st.(*ast.SelectStmt)
	switch {
	case n.Pattern != nil:
		like := *n.Pattern
		like.Expr = &ast.ColumnNameExpr{Name: &ast.ColumnName{Name: ast.NewCIStr("Name")}}
		sel.Where = &like
	case n.Where != nil:
		sel.Where = n.Where
	}
	return sel, true, nil
}

var showPackageStatus = regexp.MustCompile(`(?is)^\s*SHOW\s+PACKAGE\s+(BODY\s+)?STATUS(\s.*)?$`)

// PackageStatus reads SHOW PACKAGE [BODY] STATUS [LIKE ... | WHERE ...] (mariadb-dump
// --routines sends it; the parser does not know it) as SHOW PROCEDURE STATUS, parsed by
// parse, and writes the query on information_schema it stands for, as RoutineStatusQuery
// does. ok is false when sql does not have that shape. A statement that has it but cannot
// be read returns a nil st and the error; one read whose query cannot be written returns st
// and that query's error (the session answers it under the statement's deadline).
func PackageStatus(sql string, parse ParseFunc) (st *ast.ShowStmt, sel *ast.SelectStmt, ok bool, err error) {
	m := showPackageStatus.FindStringSubmatch(sql)
	if m == nil {
		return nil, nil, false, nil
	}
	n, err := parse("SHOW PROCEDURE STATUS" + m[2])
	if err != nil {
		return nil, nil, true, err
	}
	show, isShow := n.(*ast.ShowStmt)
	if !isShow || show.Tp != ast.ShowProcedureStatus {
		return nil, nil, true, SyntaxError(errors.New("SHOW PACKAGE STATUS takes LIKE or WHERE"))
	}
	kind := "PACKAGE"
	if m[1] != "" {
		kind = "PACKAGE BODY"
	}
	sel, _, err = RoutinesOfKind(show, kind)
	return show, sel, true, err
}
