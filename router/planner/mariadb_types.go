package planner

import (
	"regexp"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/router/sqlscan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// MariaDB's own column types UUID, INET4 and INET6 and the INVISIBLE column attribute (all in
// mariadb-dump output) are unknown to the parser. A CREATE TABLE or ALTER TABLE using them is
// planned with each type word replaced by a type the parser knows (BINARY(16), INT UNSIGNED)
// and INVISIBLE left out: neither names a table, a database, a file or a server, so the
// barrier checks everything else of the statement. The client's text is sent only when the
// plan sends the statement as written (one shard, no name rewritten); otherwise it is refused.

var (
	errTypesRewritten = sqlerr.NotSupported("UUID, INET4, INET6 or INVISIBLE columns in a statement the proxy must rewrite (sharded or broadcast tables, qualified names); create such tables on the backends directly")
	columnTypeWords   = map[string]string{"uuid": "BINARY(16)", "inet6": "BINARY(16)", "inet4": "INT UNSIGNED"}
	tableDDLPrefix    = regexp.MustCompile(`(?is)^\s*(?:CREATE\s+(?:TEMPORARY\s+)?|ALTER\s+)TABLE\s`)
)

// columnTypeEquivalent returns sql with MariaDB-only column types and INVISIBLE replaced, and
// whether it replaced anything. A word counts as a type (or as the attribute) only outside
// strings and comments, right after another name (the column's name, or its type for
// INVISIBLE), and not next to "." or before "(".
func columnTypeEquivalent(sql string) (string, bool) {
	if !tableDDLPrefix.MatchString(sql) {
		return "", false
	}
	var b strings.Builder
	changed := false
	prevName := false // the previous token was a name or a word, not punctuation
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			j := sqlscan.SkipQuoted(sql, i)
			b.WriteString(sql[i:j])
			prevName, i = c == '`', j
			continue
		case c == '#' || c == '-' && strings.HasPrefix(sql[i:], "--") && (i+2 == len(sql) || sqlscan.IsSpace(sql[i+2])),
			c == '/' && strings.HasPrefix(sql[i:], "/*"):
			return "", false // comments: not a shape worth reading
		case sqlscan.IsIdentChar(c):
			j := i
			for j < len(sql) && sqlscan.IsIdentChar(sql[j]) {
				j++
			}
			word := strings.ToLower(sql[i:j])
			k := j
			for k < len(sql) && sqlscan.IsSpace(sql[k]) {
				k++
			}
			// Before "(" a function (UUID()); before "." a database or table name, which the
			// checked text must keep.
			keep := k < len(sql) && (sql[k] == '(' || sql[k] == '.') || i > 0 && sql[i-1] == '.'
			switch eq, isType := columnTypeWords[word]; {
			case prevName && isType && !keep:
				b.WriteString(eq)
				changed = true
			case prevName && word == "invisible" && !keep:
				changed = true
			default:
				b.WriteString(sql[i:j])
			}
			prevName, i = true, j
			continue
		case !sqlscan.IsSpace(c):
			prevName = c == ')' // INT(11) INVISIBLE
		}
		b.WriteByte(c)
		i++
	}
	return b.String(), changed
}

// ColumnTypes plans a CREATE or ALTER TABLE using MariaDB-only column types (ok false when
// sql uses none) as its equivalent with types the parser knows: it goes to one shard, the
// client's text as written (SQL), only when the plan sends the equivalent unchanged. parse
// reads the equivalent as the session's parser does.
func (pl *Planner) ColumnTypes(snap *rules.Snapshot, sql string, parse ParseFunc) (sp ShapePlan, ok bool, err error) {
	text, ok := columnTypeEquivalent(sql)
	if !ok {
		return sp, false, nil
	}
	st, err := parse(text)
	if err != nil {
		return sp, true, err
	}
	switch st.(type) {
	case *ast.CreateTableStmt, *ast.AlterTableStmt:
	default:
		return sp, true, SyntaxError(errShapeLost)
	}
	refs, err := pl.DDLTargets(snap, st)
	if err != nil {
		return sp, true, err
	}
	if refs != nil {
		return sp, true, errTypesRewritten
	}
	pp, err := pl.Plan(snap, st, text, nil)
	if err != nil {
		return sp, true, err
	}
	p, ok := plan.RouteOf(pp)
	if !ok || p.SQL != text {
		return sp, true, errTypesRewritten
	}
	return ShapePlan{Stmt: st, Route: p, SQL: sql}, true, nil
}
