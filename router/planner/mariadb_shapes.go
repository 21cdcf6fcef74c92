package planner

import (
	"errors"
	"regexp"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/router/sqlscan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// MariaDB-only shapes of everyday statements the TiDB parser cannot read (the session's unparsed.go).
// Each is taken apart into a statement the parser reads and a part whose effect is known:
//
//   - MariaDB-only DDL: see mariadb_ddl.go;
//   - SELECT ... INTO @var [, @var ...] (the clause right after the select list or at the
//     end): planned as the SELECT without it; the clause only assigns user variables, and is
//     sent at the end of the planned statement, where MariaDB takes it too.

var selectPrefix = regexp.MustCompile(`(?is)^\s*SELECT\s`)

// splitSelectInto takes MariaDB's SELECT ... INTO @a [, @b ...] apart: the SELECT without the
// clause, and the clause. The clause must stand right after the select list (FROM follows it)
// or at the end of the statement, and hold only user variables. ok is false otherwise.
func splitSelectInto(sql string) (stmt, into string, ok bool) {
	if !selectPrefix.MatchString(sql) {
		return "", "", false
	}
	at := sqlscan.Keyword(sql, 0, "into")
	if at < 0 {
		return "", "", false
	}
	end, ok := userVarList(sql, at+len("into"))
	if !ok {
		return "", "", false
	}
	rest := strings.TrimSpace(strings.TrimRight(strings.TrimSpace(sql[end:]), ";"))
	if rest != "" && !startsWithWord(rest, "from") {
		return "", "", false
	}
	stmt = strings.TrimSpace(sql[:at])
	if rest != "" {
		stmt += " " + rest
	}
	return stmt, strings.TrimSpace(sql[at:end]), true
}

// userVarList reads a comma-separated list of user variables (@name, @`name`, @'name',
// @"name") from i and returns where it ends.
func userVarList(sql string, i int) (int, bool) {
	for n := 0; ; n++ {
		for i < len(sql) && sqlscan.IsSpace(sql[i]) {
			i++
		}
		if i >= len(sql) || sql[i] != '@' || i+1 < len(sql) && sql[i+1] == '@' {
			return 0, false
		}
		i++
		switch {
		case i < len(sql) && (sql[i] == '`' || sql[i] == '\'' || sql[i] == '"'):
			j := sqlscan.SkipQuoted(sql, i)
			if j > len(sql) || sql[j-1] != sql[i] || j-i < 3 {
				return 0, false
			}
			i = j
		default:
			j := i
			for j < len(sql) && (sqlscan.IsIdentChar(sql[j]) || sql[j] == '.') {
				j++
			}
			if j == i {
				return 0, false
			}
			i = j
		}
		k := i
		for k < len(sql) && sqlscan.IsSpace(sql[k]) {
			k++
		}
		if k < len(sql) && sql[k] == ',' {
			i = k + 1
			continue
		}
		return i, true
	}
}

func startsWithWord(s, word string) bool {
	if len(s) < len(word) || !strings.EqualFold(s[:len(word)], word) {
		return false
	}
	return len(s) == len(word) || !sqlscan.IsIdentChar(s[len(word)])
}

// ShapePlan is how a MariaDB-only statement the parser cannot read goes to the backends:
// Stmt is the statement the parser read in its place (its hints give the deadline); the
// statement goes either to every physical table as DDL, or to Route's shard as SQL (the
// planned text with the MariaDB parts put back).
type ShapePlan struct {
	Stmt  ast.StmtNode
	DDL   *plan.DDL
	Route *plan.Route
	SQL   string
}

// SelectInto plans SELECT ... INTO @vars (ok false when sql does not have that shape). The
// SELECT must read rows of one shard: the one where the session's user variables live
// (VariableShard); the clause goes at the end of its planned text.
func (pl *Planner) SelectInto(snap *rules.Snapshot, sql string, parse ParseFunc) (sp ShapePlan, ok bool, err error) {
	text, into, ok := splitSelectInto(sql)
	if !ok {
		return sp, false, nil
	}
	st, err := parse(text)
	if err != nil {
		return sp, true, err
	}
	sel, isSelect := st.(*ast.SelectStmt)
	if _, isUnion := st.(*ast.SetOprStmt); !isUnion && (!isSelect || sel.SelectIntoOpt != nil) {
		return sp, true, SyntaxError(errors.New("SELECT ... INTO takes one query and a list of user variables"))
	}
	pp, err := pl.Plan(snap, st, text, nil)
	if err != nil {
		return sp, true, err
	}
	home, err := pl.VariableShard(snap)
	if err != nil {
		return sp, true, err
	}
	p, single := plan.RouteOf(pp)
	switch {
	case !single:
		return sp, true, sqlerr.NotSupported("SELECT ... INTO @variable reading rows on several shards (user variables live on the database's default shard; select the values, then SET them)")
	case p.Shard != home:
		return sp, true, sqlerr.NotSupported("SELECT ... INTO @variable reading rows on shard %s: user variables live on the database's default shard %s (select the values, then SET them)", p.Shard.Name, home.Name)
	case !p.Names.Empty():
		return sp, true, sqlerr.NotSupported("SELECT ... INTO @variable from information_schema (the proxy translates its names in the rows it returns)")
	}
	return ShapePlan{Stmt: st, Route: p, SQL: p.SQL + " " + into}, true, nil
}

var showCreateRoutine = regexp.MustCompile(`(?is)^(\s*SHOW\s+CREATE\s+)(TRIGGER|FUNCTION|EVENT)(\s.*)$`)

// ShowCreateRoutine plans SHOW CREATE TRIGGER | FUNCTION | EVENT name (mariadb-dump sends
// them for every trigger, and with --routines and --events; ok false for another shape) as
// SHOW CREATE PROCEDURE name, which names the same kind of object in the same database: its
// route, with its word put back in SQL.
func (pl *Planner) ShowCreateRoutine(snap *rules.Snapshot, sql string, parse ParseFunc) (sp ShapePlan, ok bool, err error) {
	m := showCreateRoutine.FindStringSubmatch(sql)
	if m == nil {
		return sp, false, nil
	}
	text := "SHOW CREATE PROCEDURE" + m[3]
	st, err := parse(text)
	if err != nil {
		return sp, true, err
	}
	if show, isShow := st.(*ast.ShowStmt); !isShow || show.Tp != ast.ShowCreateProcedure {
		return sp, true, SyntaxError(errors.New("SHOW CREATE " + strings.ToUpper(m[2]) + " takes a name"))
	}
	pp, err := pl.Plan(snap, st, text, nil)
	if err != nil {
		return sp, true, err
	}
	p, single := plan.RouteOf(pp)
	if !single {
		return sp, true, errShapeLost
	}
	loc := showCreateProcedure.FindStringIndex(p.SQL)
	if loc == nil {
		return sp, true, errShapeLost
	}
	return ShapePlan{Stmt: st, Route: p, SQL: "SHOW CREATE " + strings.ToUpper(m[2]) + " " + p.SQL[loc[1]:]}, true, nil
}

var showCreateProcedure = regexp.MustCompile(`(?is)^\s*SHOW\s+CREATE\s+PROCEDURE\s`)

var setvalCall = regexp.MustCompile(`(?is)^\s*((?:DO|SELECT)\s+SETVAL\s*\(\s*(?:` + "`[^`]+`" + `|\w+)(?:\s*\.\s*(?:` + "`[^`]+`" + `|\w+))?\s*,\s*-?\d+)\s*,\s*(?:0|1|TRUE|FALSE)\s*(?:,\s*\d+\s*)?\)\s*;?\s*$`)

// Setval plans MariaDB's SETVAL(sequence, n, is_used [, round]) (mariadb-dump restores
// every sequence with DO SETVAL(`s`, n, 0); ok false for another shape): the parser knows
// only SETVAL(sequence, n), which is planned; the extra arguments are integer literals. The
// client's text (SQL) is sent only when the plan sends the two-argument form unchanged.
func (pl *Planner) Setval(snap *rules.Snapshot, sql string, parse ParseFunc) (sp ShapePlan, ok bool, err error) {
	m := setvalCall.FindStringSubmatch(sql)
	if m == nil {
		return sp, false, nil
	}
	text := m[1] + ")"
	st, err := parse(text)
	if err != nil {
		return sp, true, err
	}
	pp, err := pl.Plan(snap, st, text, nil)
	if err != nil {
		return sp, true, err
	}
	p, single := plan.RouteOf(pp)
	if !single || p.SQL != text || !p.Names.Empty() {
		return sp, true, sqlerr.NotSupported("SETVAL with more than two arguments in a statement the proxy must rewrite (qualified names): use SETVAL(sequence, n)")
	}
	return ShapePlan{Stmt: st, Route: p, SQL: strings.TrimRight(strings.TrimSpace(sql), ";")}, true, nil
}
