package router

import (
	"context"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/router/sqlscan"
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
// ok is false when there is no such keyword, when another statement follows the clause or
// when a comment is left open.
func splitReturning(sql string) (stmt, clause string, ok bool) {
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
	stmts, err := parseSafely(s.vars.parser, text)
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
func withReturning(p plan.Primitive, clause string) (plan.Primitive, error) {
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

// execReturning runs an INSERT, REPLACE or DELETE ... RETURNING sent as a query.
func (s *Session) execReturning(ctx context.Context, snap *rules.Snapshot, st ast.StmtNode, text, clause string, w wire.PacketWriter) error {
	p, err := s.plan(snap, st, text, nil)
	if err == nil {
		p, err = withReturning(p, clause)
	}
	if err != nil {
		return err
	}
	r, ok := plan.RouteOf(p)
	if !ok {
		return sqlerr.NotSupported("RETURNING on a statement whose rows are on several shards")
	}
	if r.Sticky {
		s.sticky = true
	}
	if err := s.checkWrite(ctx, r.Shard); err != nil {
		return err
	}
	return lostWrite(s.run(ctx, snap, r.Shard, r.SQL, false, w))
}
