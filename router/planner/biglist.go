package planner

import (
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
	"github.com/shardproxy/shardproxy/router/sqlscan"
	"github.com/shardproxy/shardproxy/rules"
)

// The literal lists of a large statement are cut out before parsing (router's
// compactLists): a list of at least MinBigList values becomes the string literal
// BigListMark + its number + BigListClose, and BigLists holds the texts.
const (
	MinBigList   = 512
	BigListMark  = "\x01shardproxy-list-"
	BigListClose = "\x01"
)

// MinBigStatement is the size from which a statement's lists are cut out: smaller ones are
// parsed as they are.
const MinBigStatement = 64 << 10

// isListMarker reports whether e stands for a list cut out of the statement.
func isListMarker(e ast.ExprNode) bool {
	v, ok := e.(*test_driver.ValueExpr)
	if !ok {
		return false
	}
	str, ok := v.GetValue().(string)
	return ok && strings.HasPrefix(str, BigListMark)
}

// BigLists are the literal lists cut out of the statement being run.
type BigLists []string

// list returns the text of the list a marker names, if v is one.
func (l BigLists) list(e ast.ExprNode) (string, bool) {
	v, ok := e.(*test_driver.ValueExpr)
	if !ok || len(l) == 0 {
		return "", false
	}
	s, ok := v.GetValue().(string)
	if !ok || !strings.HasPrefix(s, BigListMark) || !strings.HasSuffix(s, BigListClose) {
		return "", false
	}
	n, err := strconv.Atoi(s[len(BigListMark) : len(s)-len(BigListClose)])
	if err != nil || n < 0 || n >= len(l) {
		return "", false
	}
	return l[n], true
}

// Expand puts the lists back into SQL restored from a compacted statement.
func (l BigLists) Expand(sql string) string {
	if len(l) == 0 || !strings.Contains(sql, BigListMark) {
		return sql
	}
	size := len(sql)
	for _, t := range l {
		size += len(t)
	}
	var b strings.Builder
	b.Grow(size)
	for {
		i := strings.Index(sql, "'"+BigListMark)
		if i < 0 {
			b.WriteString(sql)
			return b.String()
		}
		rest := sql[i+1+len(BigListMark):]
		j := strings.Index(rest, BigListClose+"'")
		n, err := strconv.Atoi(rest[:max(j, 0)])
		if j < 0 || err != nil || n < 0 || n >= len(l) {
			b.WriteString(sql)
			return b.String()
		}
		b.WriteString(sql[:i])
		b.WriteString(l[n])
		sql = rest[j+len(BigListClose)+1:]
	}
}

// values decodes the literals of a list, as exprValue would (numbers that are integral
// become integers, strings lose their quotes and escapes).
func listValues(text string, backslash bool) ([]rules.Value, bool) {
	var out []rules.Value
	for i := 0; i < len(text); {
		i = sqlscan.SkipSpace(text, i)
		j := sqlscan.LiteralEnd(text, i, backslash)
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
		i = sqlscan.SkipSpace(text, j)
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
