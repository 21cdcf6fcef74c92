package planner

import (
	"strings"

	"github.com/shardproxy/shardproxy/router/sqlscan"
)

// A small lexer for the heads of statements the parser cannot read (program_parse.go).

type tokenKind int

const (
	tokWord   tokenKind = iota // unquoted identifier or keyword
	tokQuoted                  // `identifier`
	tokString                  // 'string' or "string"
	tokNumber
	tokPunct
)

type token struct {
	kind     tokenKind
	text     string
	pos, end int
}

func (t token) is(word string) bool { return t.kind == tokWord && strings.EqualFold(t.text, word) }

func (t token) name() bool { return t.kind == tokWord || t.kind == tokQuoted }

// ident is the name a word or quoted identifier stands for.
func (t token) ident() string {
	if t.kind == tokQuoted && len(t.text) >= 2 {
		return strings.ReplaceAll(t.text[1:len(t.text)-1], "``", "`")
	}
	return t.text
}

// tokenize splits sql into tokens, comments and spaces left out.
func tokenize(sql string) []token {
	var out []token
	for i := 0; i < len(sql); {
		next, open := sqlscan.SkipComment(sql, i)
		if open {
			return out
		}
		if next > i {
			i = next
			continue
		}
		c := sql[i]
		start := i
		switch {
		case sqlscan.IsSpace(c):
			i++
			continue
		case c == '`':
			i = sqlscan.SkipQuoted(sql, i)
			out = append(out, token{tokQuoted, sql[start:i], start, i})
			continue
		case c == '\'' || c == '"':
			i = sqlscan.SkipQuoted(sql, i)
			out = append(out, token{tokString, sql[start:i], start, i})
			continue
		case c >= '0' && c <= '9':
			for i < len(sql) && (sqlscan.IsIdentChar(sql[i]) || sql[i] == '.') {
				i++
			}
			out = append(out, token{tokNumber, sql[start:i], start, i})
			continue
		case sqlscan.IsIdentChar(c):
			for i < len(sql) && sqlscan.IsIdentChar(sql[i]) {
				i++
			}
			out = append(out, token{tokWord, sql[start:i], start, i})
			continue
		}
		i++
		out = append(out, token{tokPunct, sql[start:i], start, i})
	}
	return out
}

// resolveVersionComments returns sql with MySQL's executable comments (/*!NNNNN text */, which
// MariaDB runs whatever the version, mariadb-dump writes them around triggers and events)
// replaced by their text, as MariaDB reads it. ok is false when one is nested or left open.
func resolveVersionComments(sql string) (string, bool) {
	if !strings.Contains(sql, "/*!") {
		return sql, true
	}
	var b strings.Builder
	in := false
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			j := sqlscan.SkipQuoted(sql, i)
			b.WriteString(sql[i:j])
			i = j
			continue
		case c == '/' && strings.HasPrefix(sql[i:], "/*!"):
			if in {
				return "", false
			}
			in = true
			i += 3
			for k := 0; k < 6 && i < len(sql) && sql[i] >= '0' && sql[i] <= '9'; k++ {
				i++
			}
			b.WriteByte(' ')
			continue
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return "", false
			}
			b.WriteString(sql[i : i+end+4])
			i += end + 4
			continue
		case in && c == '*' && strings.HasPrefix(sql[i:], "*/"):
			in = false
			b.WriteByte(' ')
			i += 2
			continue
		}
		b.WriteByte(c)
		i++
	}
	out := b.String()
	return out, !in && !strings.Contains(out, "/*!") // one left in a comment's quote: read otherwise
}
