package sqlscan

import "strings"

// Kind is what a Token is.
type Kind uint8

// The kinds of Token.
const (
	Word    Kind = iota // a run of identifier bytes (keyword or unquoted name)
	Other               // any other single byte: space, punctuation, parenthesis
	Quoted              // a string literal or quoted identifier, its quotes included
	Comment             // a # or "-- " comment to the end of the line, or a closed /* block */
)

// Token is one token of SQL text: sql[Start:End], with Depth the count of parentheses open
// around it (a parenthesis itself counts as outside; an unbalanced ")" makes it negative).
type Token struct {
	Start, End, Depth int
	Kind              Kind
}

// Scan walks sql from i on and calls visit with each token. It reports whether it reached
// the end of sql: false when visit returned false or a block comment is left open (that
// comment is not visited). An unterminated quoted token runs to the end of sql.
func Scan(sql string, i int, visit func(Token) bool) bool {
	depth := 0
	for i < len(sql) {
		next, open := SkipComment(sql, i)
		if open {
			return false
		}
		t := Token{Start: i, End: i + 1, Depth: depth, Kind: Other}
		switch c := sql[i]; {
		case next > i:
			t.End, t.Kind = next, Comment
		case c == '\'' || c == '"' || c == '`':
			t.End, t.Kind = SkipQuoted(sql, i), Quoted
		case c == ')':
			depth--
			t.Depth = depth
		case IsIdentChar(c):
			for t.End < len(sql) && IsIdentChar(sql[t.End]) {
				t.End++
			}
			t.Kind = Word
		}
		if !visit(t) {
			return false
		}
		if sql[i] == '(' {
			depth++
		}
		i = t.End
	}
	return true
}

// TopLevel is Scan without string literals, quoted identifiers and comments: it calls visit
// with each word and each other byte as sql[start:end], with depth, the count of parentheses
// open around it.
func TopLevel(sql string, i int, visit func(start, end, depth int) bool) bool {
	return Scan(sql, i, func(t Token) bool {
		if t.Kind == Quoted || t.Kind == Comment {
			return true
		}
		return visit(t.Start, t.End, t.Depth)
	})
}

// Keyword returns the index of the first keyword word in sql from i on: outside string
// literals, quoted identifiers, comments and parentheses, not qualified by a dot; -1 when
// there is none (or a comment is left open before it).
func Keyword(sql string, i int, word string) int {
	at := -1
	TopLevel(sql, i, func(start, end, depth int) bool {
		if depth == 0 && strings.EqualFold(sql[start:end], word) && !Qualified(sql, start) {
			at = start
			return false
		}
		return true
	})
	return at
}

// SkipComment returns the index after the comment that starts at i (a # or "-- " comment
// to the end of the line, a /* block */), or i when none starts there; open reports a block
// comment left open.
func SkipComment(sql string, i int) (next int, open bool) {
	switch c := sql[i]; {
	case c == '#' || c == '-' && strings.HasPrefix(sql[i:], "--") && (i+2 == len(sql) || IsSpace(sql[i+2])):
		for i < len(sql) && sql[i] != '\n' {
			i++
		}
		return i, false
	case c == '/' && strings.HasPrefix(sql[i:], "/*"):
		end := strings.Index(sql[i+2:], "*/")
		if end < 0 {
			return len(sql), true
		}
		return i + end + 4, false
	}
	return i, false
}

// SkipQuoted returns the index after the quoted token starting at i. A doubled quote
// character stands for itself; in strings a backslash escapes the next byte.
func SkipQuoted(sql string, i int) int {
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

// IsSpace reports the bytes MariaDB's lexer reads as white space.
func IsSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// IsIdentChar reports whether c may be part of an unquoted identifier or keyword (bytes of
// multi-byte UTF-8 characters included).
func IsIdentChar(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// Qualified reports whether the word at i follows a dot (t.returning is a column).
func Qualified(sql string, i int) bool {
	for i > 0 && IsSpace(sql[i-1]) {
		i--
	}
	return i > 0 && sql[i-1] == '.'
}

// SkipSpace returns the index of the first byte at or after i that is not a space, tab or
// line break.
func SkipSpace(sql string, i int) int {
	for i < len(sql) && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r') {
		i++
	}
	return i
}

// LiteralEnd returns the index after a number or single-quoted string at i, or -1.
func LiteralEnd(sql string, i int, backslash bool) int {
	if i >= len(sql) {
		return -1
	}
	if sql[i] == '\'' {
		j := SkipToken(sql, i, backslash)
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
	if j == start || j < len(sql) && (IsIdentChar(sql[j]) || sql[j] == '.') {
		return -1 // not a plain number (1e5, 0x1F, 1.2.3, 12abc)
	}
	return j
}

// IsCommentStart reports whether a comment starts at i: #, /* or -- followed by a space,
// a control character or the end.
func IsCommentStart(sql string, i int) bool {
	switch {
	case sql[i] == '#':
		return true
	case strings.HasPrefix(sql[i:], "/*"):
		return true
	case strings.HasPrefix(sql[i:], "--"):
		return i+2 == len(sql) || sql[i+2] <= ' '
	}
	return false
}

// SkipToken returns the index after the lexical unit at i: a quoted string or name, a
// comment, or one byte.
func SkipToken(sql string, i int, backslash bool) int {
	switch c := sql[i]; {
	case c == '\'' || c == '"' || c == '`':
		for j := i + 1; j < len(sql); j++ {
			switch {
			case sql[j] == '\\' && backslash && c != '`':
				j++
			case sql[j] == c:
				return j + 1 // a doubled quote reopens at the next step
			}
		}
		return len(sql)
	case IsCommentStart(sql, i):
		if sql[i] == '/' {
			if j := strings.Index(sql[i+2:], "*/"); j >= 0 {
				return i + 2 + j + 2
			}
			return len(sql)
		}
		if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
			return i + j + 1
		}
		return len(sql)
	}
	return i + 1
}
