package router

import (
	"context"
	"strconv"
	"strings"

	"github.com/shardproxy/shardproxy/router/planner"
	"github.com/shardproxy/shardproxy/router/sqlscan"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"

	"github.com/shardproxy/shardproxy/router/engine"
)

// Long lists of literals (`id NOT IN (1, 2, ..., 1000000)`) cost the parser about 300 bytes
// of syntax tree per element: a 7 MB statement took 450 MB. Before parsing, each list of at
// least minBigList plain literals (numbers, single-quoted strings) is cut out of the text
// and replaced by one string literal, a marker naming it; the planner sees a one-element
// list. Where a list's values matter to the proxy (a shard key IN list, see keyValues) they
// are decoded from the text one by one; the SQL sent to a backend gets the text back
// (expandLists). The markers hold control bytes a statement cannot hold elsewhere: a text
// that already contains one is left as it is.

// parseText parses a client's text, its long literal lists cut out first when it is large;
// s.lists holds them until the caller clears it. On a parse error s.lists is empty.
func (s *Session) parseText(sql string) ([]ast.StmtNode, error) {
	s.lists = nil
	if len(sql) < planner.MinBigStatement {
		return s.parse(sql)
	}
	compact, lists := compactLists(sql, s.vars.restoreFlags&format.RestoreStringEscapeBackslash != 0)
	stmts, err := s.parse(compact)
	if err != nil {
		return nil, err
	}
	s.lists = lists
	return stmts, nil
}

// compactLists returns sql with its long literal lists replaced by markers, and the lists'
// texts (the elements, without the parentheses). backslash says backslashes escape in
// strings.
func compactLists(sql string, backslash bool) (string, planner.BigLists) {
	if len(sql) < 2*planner.MinBigList || strings.Contains(sql, planner.BigListMark) {
		return sql, nil
	}
	var b strings.Builder
	var lists planner.BigLists
	last := 0
	for i := 0; i < len(sql); {
		if sql[i] == '(' {
			if end, n := literalList(sql, i+1, backslash); n >= planner.MinBigList {
				b.WriteString(sql[last : i+1])
				b.WriteString("'" + planner.BigListMark + strconv.Itoa(len(lists)) + planner.BigListClose + "'")
				lists = append(lists, sql[i+1:end])
				last, i = end, end
				continue
			}
		}
		i = sqlscan.SkipToken(sql, i, backslash)
	}
	if lists == nil {
		return sql, nil
	}
	b.WriteString(sql[last:])
	return b.String(), lists
}

// literalList scans the elements of a list starting at i (after its opening parenthesis):
// plain literals separated by commas. It returns the index of the closing parenthesis and
// the number of elements, or n = 0 when the list holds anything else.
func literalList(sql string, i int, backslash bool) (end, n int) {
	for {
		i = sqlscan.SkipSpace(sql, i)
		j := sqlscan.LiteralEnd(sql, i, backslash)
		if j < 0 {
			return 0, 0
		}
		n++
		i = sqlscan.SkipSpace(sql, j)
		switch {
		case i < len(sql) && sql[i] == ',':
			i++
		case i < len(sql) && sql[i] == ')':
			return i, n
		default:
			return 0, 0
		}
	}
}

// sendQuery writes a COM_QUERY of sql to c without copying the statement.
func sendQuery(ctx context.Context, c Conn, sql string) error {
	bw := c.Wire()
	bw.ResetSeq()
	if err := bw.WriteCommandString(engine.ComQuery, sql); err != nil {
		return engine.IOErr(ctx, c, err)
	}
	if err := bw.Flush(); err != nil {
		return engine.IOErr(ctx, c, err)
	}
	return nil
}
