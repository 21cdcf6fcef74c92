package introspect

import (
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// information_schema on a backend describes every database of the server, and the proxy's
// backend account may see them all. A statement reading information_schema therefore reads
// each of its tables that names schemas through a derived table that keeps only the rows of
// the user's own physical databases on the shard (and of information_schema itself):
//
//	FROM information_schema.TABLES t
//	→ FROM (SELECT * FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ('shop_0', ...)) AS t
//
// so aggregates, joins and subqueries over it only ever see the user's databases (and each
// table-per-slot table once, see Names).

// infoSchemaColumns lists, for the information_schema tables that describe database objects,
// the columns naming a schema.
var infoSchemaColumns = map[string][]string{
	"schemata":                {"SCHEMA_NAME"},
	"tables":                  {"TABLE_SCHEMA"},
	"columns":                 {"TABLE_SCHEMA"},
	"statistics":              {"TABLE_SCHEMA", "INDEX_SCHEMA"},
	"views":                   {"TABLE_SCHEMA"},
	"partitions":              {"TABLE_SCHEMA"},
	"table_constraints":       {"CONSTRAINT_SCHEMA", "TABLE_SCHEMA"},
	"key_column_usage":        {"CONSTRAINT_SCHEMA", "TABLE_SCHEMA", "REFERENCED_TABLE_SCHEMA"},
	"referential_constraints": {"CONSTRAINT_SCHEMA", "UNIQUE_CONSTRAINT_SCHEMA"},
	"check_constraints":       {"CONSTRAINT_SCHEMA"},
	"routines":                {"ROUTINE_SCHEMA"},
	"parameters":              {"SPECIFIC_SCHEMA"},
	"triggers":                {"TRIGGER_SCHEMA", "EVENT_OBJECT_SCHEMA"},
	"events":                  {"EVENT_SCHEMA"},
	"table_privileges":        {"TABLE_SCHEMA"},
	"column_privileges":       {"TABLE_SCHEMA"},
	"schema_privileges":       {"TABLE_SCHEMA"},
	"table_statistics":        {"TABLE_SCHEMA"},
	"index_statistics":        {"TABLE_SCHEMA"},
}

// infoSchemaTableColumn names, for information_schema tables that describe tables, the
// column holding the table name: rows of a table-per-slot table's later slot tables on the
// shard are left out there too, so counts see each logical table once.
var infoSchemaTableColumn = map[string]string{
	"tables":            "TABLE_NAME",
	"columns":           "TABLE_NAME",
	"statistics":        "TABLE_NAME",
	"views":             "TABLE_NAME",
	"partitions":        "TABLE_NAME",
	"table_constraints": "TABLE_NAME",
	"key_column_usage":  "TABLE_NAME",
	"triggers":          "EVENT_OBJECT_TABLE",
	"table_privileges":  "TABLE_NAME",
	"column_privileges": "TABLE_NAME",
	"table_statistics":  "TABLE_NAME",
	"index_statistics":  "TABLE_NAME",
}

// AllowedSchemas are the physical databases on shard of the logical databases user may use,
// and information_schema.
func AllowedSchemas(snap *rules.Snapshot, user string, shard *rules.Shard) []string {
	out := []string{"information_schema"}
	u, _ := snap.User(user)
	for _, name := range snap.DatabaseNames() {
		db, _ := snap.Database(name)
		if u != nil && u.CanUse(name) && slices.Contains(db.Shards(), shard) {
			out = append(out, shard.Database)
		}
	}
	return out
}

// Filter replaces the information_schema tables a statement reads (tables, with their FROM
// sources) by derived tables holding only the rows of allowed schemas and not of the hidden
// tables. It reports whether it changed anything; then Unqualify must run over the statement.
// Each source is changed through edit (its alias, its source), which may record the old
// values to put them back.
func Filter(tables []*ast.TableName, sources map[*ast.TableName]*ast.TableSource, allowed, hidden []string, edit func(src *ast.TableSource, as ast.CIStr, source ast.ResultSetNode)) (bool, error) {
	changed := false
	var p *parser.Parser
	for _, tn := range tables {
		cols, ok := infoSchemaColumns[tn.Name.L]
		src := sources[tn]
		if !ok || src == nil || src.Source != tn {
			continue
		}
		quoted := make([]string, len(allowed))
		for i, a := range allowed {
			quoted[i] = wire.QuoteString(a)
		}
		in := strings.Join(quoted, ", ")
		conds := make([]string, len(cols))
		for i, c := range cols {
			conds[i] = "(" + c + " IS NULL OR " + c + " IN (" + in + "))"
		}
		if tc, ok := infoSchemaTableColumn[tn.Name.L]; ok && len(hidden) > 0 {
			names := make([]string, len(hidden))
			for i, h := range hidden {
				names[i] = wire.QuoteString(h)
			}
			conds = append(conds, tc+" NOT IN ("+strings.Join(names, ", ")+")")
		}
		if p == nil {
			p = parser.New() // the session's parser still holds this statement's results
		}
		sql := "SELECT * FROM information_schema." + tn.Name.O + " WHERE " + strings.Join(conds, " AND ")
		st, err := p.ParseOneStmt(sql, "", "")
		if err != nil {
			return false, sqlerr.New(sqlerr.ErUnknownError, "router: filtering information_schema.%s: %v", tn.Name.O, err)
		}
		as := src.AsName
		if as.O == "" {
			as = tn.Name
		}
		edit(src, as, st.(*ast.SelectStmt))
		changed = true
	}
	return changed, nil
}

// Unqualify drops the schema from column references of st qualified by information_schema
// (information_schema.TABLES.TABLE_NAME), which name a derived table once Filter ran. Each
// schema is changed through set, which may record the old value to put it back.
func Unqualify(st ast.Node, set func(p *ast.CIStr, v ast.CIStr)) { st.Accept(unqualifyInfoSchema{set}) }

// unqualifyInfoSchema is Unqualify's walk.
type unqualifyInfoSchema struct {
	set func(p *ast.CIStr, v ast.CIStr)
}

// Enter drops the information_schema qualifier of a column reference.
func (u unqualifyInfoSchema) Enter(n ast.Node) (ast.Node, bool) {
	if c, ok := n.(*ast.ColumnNameExpr); ok && c.Name.Schema.L == "information_schema" {
		u.set(&c.Name.Schema, ast.NewCIStr(""))
	}
	return n, false
}

// Leave keeps n.
func (unqualifyInfoSchema) Leave(n ast.Node) (ast.Node, bool) { return n, true }
