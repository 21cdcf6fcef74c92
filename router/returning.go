package router

import (
	"context"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// MariaDB (10.5 and later) takes a RETURNING clause at the end of INSERT, REPLACE and
// DELETE; GORM sends one with every INSERT to MariaDB. The TiDB parser does not know it, so
// in a sharded database the proxy cuts the clause off the text, plans the rest as usual
// (routing, physical table names) and sends the planned statement with the clause put back.
// Only a statement that goes to one shard may carry it.

// splitReturning finds the top-level RETURNING keyword of sql: outside string literals,
// quoted identifiers, comments and parentheses, not qualified by a dot. It returns the text
// before it and the clause from the keyword to the end (a trailing semicolon dropped).
// ok is false when there is no such keyword or when another statement follows the clause.
func splitReturning(sql string) (stmt, clause string, ok bool) {
	at := -1
	depth := 0
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(sql, i)
			continue
		case c == '#' || c == '-' && strings.HasPrefix(sql[i:], "--") && (i+2 == len(sql) || isSpace(sql[i+2])):
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			continue
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return "", "", false
			}
			i += end + 4
			continue
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ';':
			if at >= 0 && strings.TrimSpace(sql[i+1:]) != "" {
				return "", "", false // another statement follows
			}
		case isIdentChar(c):
			j := i
			for j < len(sql) && isIdentChar(sql[j]) {
				j++
			}
			if at < 0 && depth == 0 && strings.EqualFold(sql[i:j], "returning") && !qualified(sql, i) {
				at = i
			}
			i = j
			continue
		}
		i++
	}
	if at < 0 {
		return "", "", false
	}
	clause = strings.TrimRight(strings.TrimSpace(sql[at:]), ";")
	return strings.TrimSpace(sql[:at]), strings.TrimSpace(clause), true
}

// skipQuoted returns the index after the quoted token starting at i. A doubled quote
// character stands for itself; in strings a backslash escapes the next byte.
func skipQuoted(sql string, i int) int {
	q := sql[i]
	for j := i + 1; j < len(sql); j++ {
		switch sql[j] {
		case '\\':
			if q != '`' {
				j++
			}
		case q:
			if j+1 < len(sql) && sql[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(sql)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// isIdentChar reports whether c may be part of an unquoted identifier or keyword (bytes of
// multi-byte UTF-8 characters included).
func isIdentChar(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// qualified reports whether the word at i follows a dot (t.returning is a column).
func qualified(sql string, i int) bool {
	for i > 0 && isSpace(sql[i-1]) {
		i--
	}
	return i > 0 && sql[i-1] == '.'
}

// returningStmt parses a statement whose text the parser rejected, if it is an INSERT,
// REPLACE or DELETE with a RETURNING clause; it returns the statement without the clause,
// its text and the clause. ok is false when sql is not such a statement (the caller then
// reports the original syntax error).
func (s *Session) returningStmt(sql string) (st ast.StmtNode, text, clause string, ok bool) {
	text, clause, ok = splitReturning(sql)
	if !ok {
		return nil, "", "", false
	}
	s.parses++
	stmts, err := parseSafely(s.parser, text)
	if err != nil || len(stmts) != 1 {
		return nil, "", "", false
	}
	switch stmts[0].(type) {
	case *ast.InsertStmt, *ast.DeleteStmt:
		return stmts[0], text, clause, true
	}
	return nil, "", "", false
}

// withReturning puts a RETURNING clause back on a planned statement (a no-op for "").
func withReturning(p plan, clause string) (plan, error) {
	if clause == "" {
		return p, nil
	}
	if p.scatter != nil || p.branches != nil {
		return plan{}, sqlerr.NotSupported("RETURNING on a statement whose rows are on several shards")
	}
	p.sql += " " + clause
	return p, nil
}

// execReturning runs an INSERT, REPLACE or DELETE ... RETURNING sent as a query.
func (s *Session) execReturning(ctx context.Context, snap *rules.Snapshot, st ast.StmtNode, text, clause string, w wire.PacketWriter) error {
	p, err := s.plan(snap, st, text, nil)
	if err == nil {
		p, err = withReturning(p, clause)
	}
	if err != nil {
		return err
	}
	if p.sticky {
		s.sticky = true
	}
	if err := s.checkWrite(ctx, p.shard); err != nil {
		return err
	}
	return lostWrite(s.run(ctx, snap, p.shard, p.sql, false, w))
}
