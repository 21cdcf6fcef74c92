package planner

import (
	"errors"
	"regexp"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/router/sqlscan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// MariaDB-only DDL shapes (the session's unparsed.go). Each is planned as a statement the parser reads
// (the barrier sees its table names, columns, options, AS SELECT and LIKE) and sent as that
// statement's planned text with the MariaDB words put back, whose effect is known:
//
//   - CREATE OR REPLACE [TEMPORARY] TABLE | SEQUENCE ...: planned as CREATE TABLE | SEQUENCE
//     ...; OR REPLACE only drops the table the statement creates first, which DROP TABLE
//     through the proxy may do;
//   - CREATE TABLE ... WITH SYSTEM VERSIONING (the clause last; no AS SELECT, LIKE or
//     partitions): planned without the clause, which only makes MariaDB keep the table's
//     row history;
//   - ALTER TABLE t ADD|DROP SYSTEM VERSIONING: planned as ALTER TABLE t FORCE (a rebuild of
//     the same table).
//
// On sharded and broadcast tables they fan out to every physical table, as their parsed
// equivalent does.

var (
	createOrReplaceTable = regexp.MustCompile(`(?is)^\s*CREATE\s+OR\s+REPLACE\s+((?:TEMPORARY\s+)?(?:TABLE|SEQUENCE)\s)`)
	createTable          = regexp.MustCompile(`(?is)^\s*CREATE\s+(?:TEMPORARY\s+)?TABLE\s`)
	withVersioning       = regexp.MustCompile(`(?is)\sWITH\s+SYSTEM\s+VERSIONING\s*;?\s*$`)
	alterVersioning      = regexp.MustCompile(`(?is)^(\s*ALTER\s+TABLE\s+.+?)\s+(ADD|DROP)\s+SYSTEM\s+VERSIONING\s*;?\s*$`)
	leadCreate           = regexp.MustCompile(`(?is)^\s*CREATE\s`)
	trailForce           = regexp.MustCompile(`(?is)\sFORCE(?:\s*/\*[^*]*\*/)?\s*$`) // restored: FORCE /* AlterTableForce is not supported */

	errShapeLost = errors.New("router: a planned MariaDB-only statement lost its shape")
)

// ddlShape is how a MariaDB-only DDL statement was taken apart.
type ddlShape struct {
	text      string // the statement without the MariaDB words
	checked   string // what the parser reads: text, or text with MariaDB column types replaced
	typed     bool   // checked differs from text (mariadb_types.go): text is sent as written or not at all
	orReplace bool   // CREATE OR REPLACE TABLE
	versioned bool   // CREATE TABLE ... WITH SYSTEM VERSIONING
	alter     string // ALTER TABLE ... ADD or DROP SYSTEM VERSIONING: that word
}

// fix turns the planned text of the equivalent back into the MariaDB statement.
func (d ddlShape) fix(planned string) (string, bool) {
	if d.alter != "" {
		loc := trailForce.FindStringIndex(planned)
		if loc == nil {
			return "", false
		}
		return planned[:loc[0]] + " " + d.alter + " SYSTEM VERSIONING", true
	}
	if d.orReplace {
		loc := leadCreate.FindStringIndex(planned)
		if loc == nil {
			return "", false
		}
		planned = "CREATE OR REPLACE " + strings.TrimLeft(planned[loc[1]:], " \t\r\n")
	}
	if d.versioned {
		planned = strings.TrimRight(planned, " \t\r\n;") + " WITH SYSTEM VERSIONING"
	}
	return planned, true
}

// mariadbDDL is a parsed equivalent that restores as the MariaDB statement (fanned-out DDL
// restores it under each physical name).
type mariadbDDL struct {
	ast.StmtNode
	shape ddlShape
}

// Restore writes the equivalent's text with the MariaDB words put back.
func (n mariadbDDL) Restore(ctx *format.RestoreCtx) error {
	var b strings.Builder
	if err := n.StmtNode.Restore(format.NewRestoreCtx(ctx.Flags, &b)); err != nil {
		return err
	}
	out, ok := n.shape.fix(b.String())
	if !ok {
		return errShapeLost
	}
	ctx.WritePlain(out)
	return nil
}

// mariadbDDLShape takes sql apart if it is one of the DDL shapes.
func mariadbDDLShape(sql string) (d ddlShape, ok bool) {
	if m := alterVersioning.FindStringSubmatch(sql); m != nil {
		return ddlShape{text: m[1] + " FORCE", alter: strings.ToUpper(m[2])}, true
	}
	d.text = sql
	if loc := createOrReplaceTable.FindStringSubmatchIndex(sql); loc != nil {
		d.text, d.orReplace = "CREATE "+sql[loc[2]:], true
	}
	if loc := withVersioning.FindStringIndex(d.text); loc != nil && createTable.MatchString(d.text) && atTopLevel(d.text, loc[0]+1, "with") {
		d.text, d.versioned = d.text[:loc[0]], true
	}
	return d, d.orReplace || d.versioned
}

// atTopLevel reports whether the keyword word starts at index at of sql outside strings,
// comments and parentheses.
func atTopLevel(sql string, at int, word string) bool {
	for i := 0; ; {
		j := sqlscan.Keyword(sql, i, word)
		if j < 0 || j > at {
			return false
		}
		if j == at {
			return true
		}
		i = j + len(word)
	}
}

// MariaDBDDL plans sql when it is one of the MariaDB-only DDL shapes (ok false otherwise):
// its parsed equivalent is routed as DDL is, fanned out to every physical table (DDL, each
// copy's statement with the MariaDB words put back), or sent to one shard as its planned text
// fixed into the MariaDB statement (Route, SQL). parse reads the equivalent as the session's
// parser does.
func (pl *Planner) MariaDBDDL(snap *rules.Snapshot, sql string, parse ParseFunc) (sp ShapePlan, ok bool, err error) {
	d, ok := mariadbDDLShape(sql)
	if !ok {
		return sp, false, nil
	}
	d.checked = d.text
	if eq, typed := columnTypeEquivalent(d.text); typed {
		d.checked, d.typed = eq, true
	}
	st, err := parse(d.checked)
	if err != nil {
		return sp, true, err
	}
	switch n := st.(type) {
	case *ast.CreateTableStmt:
		if d.versioned && (n.Select != nil || n.ReferTable != nil || n.Partition != nil) {
			return sp, true, sqlerr.NotSupported("WITH SYSTEM VERSIONING beside AS SELECT, LIKE or partitions through the proxy")
		}
	case *ast.CreateSequenceStmt:
		if !d.orReplace || d.versioned || d.typed {
			return sp, true, SyntaxError(errShapeLost)
		}
	case *ast.AlterTableStmt:
		if len(n.Specs) != 1 || n.Specs[0].Tp != ast.AlterTableForce {
			return sp, true, SyntaxError(errShapeLost)
		}
	default:
		return sp, true, SyntaxError(errShapeLost)
	}
	sp, err = pl.planMariaDBDDL(snap, st, d)
	return sp, true, err
}

// planMariaDBDDL routes st, the parsed equivalent of a DDL shape d, as DDL is routed, and
// fixes its planned text into the MariaDB statement.
func (pl *Planner) planMariaDBDDL(snap *rules.Snapshot, st ast.StmtNode, d ddlShape) (ShapePlan, error) {
	sp := ShapePlan{Stmt: st}
	refs, err := pl.DDLTargets(snap, st)
	if err != nil {
		return sp, err
	}
	if refs != nil {
		if d.typed {
			return sp, errTypesRewritten
		}
		if n, ok := st.(*ast.CreateTableStmt); ok && n.Select != nil {
			return sp, sqlerr.NotSupported("CREATE OR REPLACE TABLE ... AS SELECT on a sharded or broadcast table (create it, then INSERT ... SELECT)")
		}
		sp.DDL, err = pl.PlanDDL(mariadbDDL{st, d}, refs)
		return sp, err
	}
	pp, err := pl.Plan(snap, st, d.checked, nil)
	if err != nil {
		return sp, err
	}
	p, ok := plan.RouteOf(pp)
	if !ok {
		return sp, sqlerr.NotSupported("CREATE OR REPLACE TABLE ... AS SELECT reading rows on several shards")
	}
	planned := p.SQL
	if d.typed {
		if p.SQL != d.checked {
			return sp, errTypesRewritten
		}
		planned = d.text
	}
	out, ok := d.fix(planned)
	if !ok {
		return sp, errShapeLost
	}
	sp.Route, sp.SQL = p, out
	return sp, nil
}
