package router

import "strings"

// The lexing the router does on SQL text it does not parse (a statement the parser rejects,
// a shape it reads wrong): enough to tell the top level of a statement from its string
// literals, quoted identifiers, comments and parentheses.

// scanTopLevel walks sql from i on, skipping string literals, quoted identifiers and
// comments, and calls visit with each word (a run of identifier bytes) and each other byte
// as sql[start:end], with depth, the count of parentheses open around it (a parenthesis
// itself counts as outside). It reports whether it reached the end of sql: false when
// visit returned false or a block comment is left open.
func scanTopLevel(sql string, i int, visit func(start, end, depth int) bool) bool {
	depth := 0
	for i < len(sql) {
		next, open := skipComment(sql, i)
		if open {
			return false
		}
		if next > i {
			i = next
			continue
		}
		c := sql[i]
		j := i + 1
		switch {
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(sql, i)
			continue
		case c == ')':
			depth--
		case isIdentChar(c):
			for j < len(sql) && isIdentChar(sql[j]) {
				j++
			}
		}
		if !visit(i, j, depth) {
			return false
		}
		if c == '(' {
			depth++
		}
		i = j
	}
	return true
}

// skipComment returns the index after the comment that starts at i (a # or "-- " comment
// to the end of the line, a /* block */), or i when none starts there; open reports a block
// comment left open.
func skipComment(sql string, i int) (next int, open bool) {
	switch c := sql[i]; {
	case c == '#' || c == '-' && strings.HasPrefix(sql[i:], "--") && (i+2 == len(sql) || isSpace(sql[i+2])):
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
