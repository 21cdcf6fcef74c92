package planner

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/router/sqlscan"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// MariaDB's RETURNING clause at the end of INSERT, REPLACE and DELETE, which the parser does
// not know: cut off the text before parsing, the statement planned without it, and put back
// on the planned statement, which must go to one shard (the session's returning.go runs it;
// nested.go checks the clause's expressions).

// SplitReturning finds the top-level RETURNING keyword of sql: outside string literals,
// quoted identifiers, comments and parentheses, not qualified by a dot. It returns the text
// before it and the clause from the keyword to the end (a trailing semicolon dropped).
// ok is false when there is no such keyword, when another statement follows the clause or
// when a comment is left open.
func SplitReturning(sql string) (stmt, clause string, ok bool) {
	at := -1
	whole := sqlscan.TopLevel(sql, 0, func(start, end, depth int) bool {
		switch {
		case sql[start] == ';':
			return at < 0 || strings.TrimSpace(sql[end:]) == "" // else another statement follows
		case at < 0 && depth == 0 && strings.EqualFold(sql[start:end], "returning") && !sqlscan.Qualified(sql, start):
			at = start
		}
		return true
	})
	if !whole || at < 0 {
		return "", "", false
	}
	clause = strings.TrimRight(strings.TrimSpace(sql[at:]), ";")
	return strings.TrimSpace(sql[:at]), strings.TrimSpace(clause), true
}

// ReturningStmt parses, with parse, a statement whose text the parser rejected, if it is an
// INSERT, REPLACE or DELETE with a RETURNING clause; it returns the statement without the
// clause, its text and the clause. ok is false when sql is not such a statement (the caller
// then reports the original syntax error).
func ReturningStmt(sql string, parse ParseFunc) (st ast.StmtNode, text, clause string, ok bool) {
	text, clause, ok = SplitReturning(sql)
	if !ok {
		return nil, "", "", false
	}
	st, err := parse(text)
	if err != nil {
		return nil, "", "", false
	}
	switch st.(type) {
	case *ast.InsertStmt, *ast.DeleteStmt:
		return st, text, clause, true
	}
	return nil, "", "", false
}

// WithReturning puts a RETURNING clause back on a planned statement (a no-op for "").
func WithReturning(p plan.Primitive, clause string) (plan.Primitive, error) {
	if clause == "" {
		return p, nil
	}
	r, ok := plan.RouteOf(p)
	if !ok {
		return nil, sqlerr.NotSupported("RETURNING on a statement whose rows are on several shards")
	}
	r.SQL += " " + clause
	return p, nil // a Passthrough stays one: its SQL is the client's text with the clause put back
}
