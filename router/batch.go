package router

import (
	"context"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"

	"github.com/shardproxy/shardproxy/router/planner"
	"github.com/shardproxy/shardproxy/router/sqlscan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// runBatch runs a multi-statement query the parser could not read as a whole (one of its
// statements is MariaDB syntax the parser does not know, or is wrong): it is cut into
// statements at the semicolons outside strings, quoted names and comments, and each runs
// as if it came alone: parsed ones through the normal path, the others through the
// allow-list of unparsed.go. As on MariaDB, the statements before a failing one have run
// and the batch stops at it. Each statement is cut under the sql_mode the statements
// before it left (NO_BACKSLASH_ESCAPES changes where strings end).
func (s *Session) runBatch(ctx context.Context, snap *rules.Snapshot, sql string, w wire.PacketWriter) error {
	rest := sql
	for {
		bs := s.vars.restoreFlags&format.RestoreStringEscapeBackslash != 0
		var stmt string
		stmt, rest = nextStatement(rest, bs)
		for blankSQL(stmt, bs) && rest != "" {
			stmt, rest = nextStatement(rest, bs)
		}
		if blankSQL(stmt, bs) {
			return nil
		}
		more := !blankSQL(rest, bs)
		if err := s.runPiece(ctx, snap, stmt, more, w); err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

// isBatch reports whether sql holds more than one statement.
func isBatch(sql string, backslash bool) bool {
	_, rest := nextStatement(sql, backslash)
	return !blankSQL(rest, backslash)
}

// runPiece runs one statement of a batch; more says another follows.
func (s *Session) runPiece(ctx context.Context, snap *rules.Snapshot, stmt string, more bool, w wire.PacketWriter) error {
	stmt = strings.TrimSpace(stmt)
	if r, ok := planner.ExplainText(stmt, s.parseOne); ok {
		if err := s.vars.facts().Grammar([]ast.StmtNode{r.Stmt}, nil); err != nil {
			return err
		}
		s.publish(stmt)
		defer s.publish("")
		return s.withDeadline(ctx, snap, statementHint(r.Stmt), func(ctx context.Context) error {
			return s.execExplain(ctx, snap, r, more, w)
		})
	}
	stmts, err := s.parseText(stmt)
	if gerr := s.vars.facts().Grammar(stmts, err); gerr != nil {
		return gerr
	}
	if err != nil {
		return s.runUnparsed(ctx, snap, stmt, err, &moreResults{w: w, more: more})
	}
	for i, st := range stmts { // one, unless the cut missed a delimiter the parser saw
		text := stmt
		if len(stmts) > 1 {
			text = s.lists.Expand(strings.TrimRight(strings.TrimSpace(st.Text()), ";"))
		}
		if err := s.execWithDeadline(ctx, snap, st, text, more || i < len(stmts)-1, w); err != nil {
			return err
		}
	}
	return nil
}

// nextStatement cuts sql at its first statement delimiter: a semicolon outside strings,
// quoted identifiers and comments. backslash says backslashes escape in strings.
func nextStatement(sql string, backslash bool) (stmt, rest string) {
	for i := 0; i < len(sql); {
		if sql[i] == ';' {
			return sql[:i], sql[i+1:]
		}
		i = sqlscan.SkipToken(sql, i, backslash)
	}
	return sql, ""
}

// blankSQL reports whether sql holds nothing but whitespace, comments and semicolons.
func blankSQL(sql string, backslash bool) bool {
	for i := 0; i < len(sql); {
		switch c := sql[i]; {
		case c == ';' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case sqlscan.IsCommentStart(sql, i):
			i = sqlscan.SkipToken(sql, i, backslash)
		default:
			return false
		}
	}
	return true
}

// moreResults is a PacketWriter that marks the end of each result passing through it
// (an OK outside a result set, or the EOF after its rows) with SERVER_MORE_RESULTS_EXISTS
// when more is set: the statement is not the last of its batch.
type moreResults struct {
	w    wire.PacketWriter
	more bool
	t    wire.ResultTracker
}

// WritePacket marks an OK outside a result set, and the EOF that ends one, then passes p on.
func (m *moreResults) WritePacket(p []byte) error {
	switch m.t.Next(p) {
	case wire.PartOK, wire.PartEnd:
		m.mark(p)
	}
	return m.w.WritePacket(p)
}

// mark sets SERVER_MORE_RESULTS_EXISTS in p's status when more is set.
func (m *moreResults) mark(p []byte) {
	if m.more {
		wire.SetStatus(p, 0, wire.StatusMoreResults)
	}
}
