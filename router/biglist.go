package router

import (
	"context"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
)

// Long lists of literals (`id NOT IN (1, 2, ..., 1000000)`) cost the parser about 300 bytes
// of syntax tree per element: a 7 MB statement took 450 MB. Before parsing, each list of at
// least minBigList plain literals (numbers, single-quoted strings) is cut out of the text
// and replaced by one string literal, a marker naming it; the planner sees a one-element
// list. Where a list's values matter to the proxy (a shard key IN list, see keyValues) they
// are decoded from the text one by one; the SQL sent to a backend gets the text back
// (expandLists). The markers hold control bytes a statement cannot hold elsewhere: a text
// that already contains one is left as it is.

const (
	minBigList   = 512
	bigListMark  = "\x01shardproxy-list-"
	bigListClose = "\x01"
)

// minBigStatement is the size from which a statement's lists are cut out: smaller ones are
// parsed as they are.
const minBigStatement = 64 << 10

// parseText parses a client's text, its long literal lists cut out first when it is large;
// s.lists holds them until the caller clears it. On a parse error s.lists is empty.
func (s *Session) parseText(sql string) ([]ast.StmtNode, error) {
	s.lists = nil
	if len(sql) < minBigStatement {
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

// isListMarker reports whether e stands for a list cut out of the statement.
func isListMarker(e ast.ExprNode) bool {
	v, ok := e.(*test_driver.ValueExpr)
	if !ok {
		return false
	}
	str, ok := v.GetValue().(string)
	return ok && strings.HasPrefix(str, bigListMark)
}

// bigLists are the literal lists cut out of the statement being run.
type bigLists []string

// compactLists returns sql with its long literal lists replaced by markers, and the lists'
// texts (the elements, without the parentheses). backslash says backslashes escape in
// strings.
func compactLists(sql string, backslash bool) (string, bigLists) {
	if len(sql) < 2*minBigList || strings.Contains(sql, bigListMark) {
		return sql, nil
	}
	var b strings.Builder
	var lists bigLists
	last := 0
	for i := 0; i < len(sql); {
		if sql[i] == '(' {
			if end, n := literalList(sql, i+1, backslash); n >= minBigList {
				b.WriteString(sql[last : i+1])
				b.WriteString("'" + bigListMark + strconv.Itoa(len(lists)) + bigListClose + "'")
				lists = append(lists, sql[i+1:end])
				last, i = end, end
				continue
			}
		}
		i = skipToken(sql, i, backslash)
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
		i = skipSpace(sql, i)
		j := literalEnd(sql, i, backslash)
		if j < 0 {
			return 0, 0
		}
		n++
		i = skipSpace(sql, j)
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

func skipSpace(sql string, i int) int {
	for i < len(sql) && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r') {
		i++
	}
	return i
}

// literalEnd returns the index after a number or single-quoted string at i, or -1.
func literalEnd(sql string, i int, backslash bool) int {
	if i >= len(sql) {
		return -1
	}
	if sql[i] == '\'' {
		j := skipToken(sql, i, backslash)
		if j > len(sql) || j-i < 2 || sql[j-1] != '\'' {
			return -1
		}
		return j
	}
	j := i
	if sql[j] == '-' || sql[j] == '+' {
		j++
	}
	start, dot := j, false
	for j < len(sql) && (sql[j] >= '0' && sql[j] <= '9' || sql[j] == '.' && !dot) {
		dot = dot || sql[j] == '.'
		j++
	}
	if j == start || j < len(sql) && (isIdentByte(sql[j]) || sql[j] == '.') {
		return -1 // not a plain number (1e5, 0x1F, 1.2.3, 12abc)
	}
	return j
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// list returns the text of the list a marker names, if v is one.
func (l bigLists) list(e ast.ExprNode) (string, bool) {
	v, ok := e.(*test_driver.ValueExpr)
	if !ok || len(l) == 0 {
		return "", false
	}
	s, ok := v.GetValue().(string)
	if !ok || !strings.HasPrefix(s, bigListMark) || !strings.HasSuffix(s, bigListClose) {
		return "", false
	}
	n, err := strconv.Atoi(s[len(bigListMark) : len(s)-len(bigListClose)])
	if err != nil || n < 0 || n >= len(l) {
		return "", false
	}
	return l[n], true
}

// expand puts the lists back into SQL restored from a compacted statement.
func (l bigLists) expand(sql string) string {
	if len(l) == 0 || !strings.Contains(sql, bigListMark) {
		return sql
	}
	size := len(sql)
	for _, t := range l {
		size += len(t)
	}
	var b strings.Builder
	b.Grow(size)
	for {
		i := strings.Index(sql, "'"+bigListMark)
		if i < 0 {
			b.WriteString(sql)
			return b.String()
		}
		rest := sql[i+1+len(bigListMark):]
		j := strings.Index(rest, bigListClose+"'")
		n, err := strconv.Atoi(rest[:max(j, 0)])
		if j < 0 || err != nil || n < 0 || n >= len(l) {
			b.WriteString(sql)
			return b.String()
		}
		b.WriteString(sql[:i])
		b.WriteString(l[n])
		sql = rest[j+len(bigListClose)+1:]
	}
}

// values decodes the literals of a list, as exprValue would (numbers that are integral
// become integers, strings lose their quotes and escapes).
func listValues(text string, backslash bool) ([]rules.Value, bool) {
	var out []rules.Value
	for i := 0; i < len(text); {
		i = skipSpace(text, i)
		j := literalEnd(text, i, backslash)
		if j < 0 {
			return nil, false
		}
		lit := text[i:j]
		if lit[0] == '\'' {
			out = append(out, rules.StrValue(unquote(lit[1:len(lit)-1], backslash)))
		} else if n, ok := integral(strings.TrimPrefix(lit, "+")); ok {
			out = append(out, rules.IntValue(n))
		} else {
			out = append(out, rules.StrValue(strings.TrimPrefix(lit, "+")))
		}
		i = skipSpace(text, j)
		if i < len(text) && text[i] == ',' {
			i++
		}
	}
	return out, true
}

// unquote resolves the escapes of a single-quoted string's body.
func unquote(s string, backslash bool) string {
	if !strings.ContainsAny(s, `'\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' && i+1 < len(s) && s[i+1] == '\'':
			i++
		case c == '\\' && backslash && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				c = '\n'
			case 't':
				c = '\t'
			case 'r':
				c = '\r'
			case '0':
				c = 0
			case 'b':
				c = '\b'
			case 'Z':
				c = 26
			case '%', '_':
				b.WriteByte('\\') // kept, as MySQL does outside LIKE patterns
				c = s[i]
			default:
				c = s[i]
			}
		}
		b.WriteByte(c)
	}
	return b.String()
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
