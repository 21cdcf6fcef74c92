package sqlscan

import (
	"fmt"
	"strings"
	"testing"
)

// TestKeyword pins where Keyword finds a keyword: only at the top level of the
// text from its start on, never in a string, quoted identifier, comment or parentheses,
// nor after a dot; a comment left open before it hides it.
func TestKeyword(t *testing.T) {
	for _, tc := range []struct {
		name, sql, word string
		from, want      int
	}{
		{"first", "SELECT a INTO @x FROM t", "into", 0, 9},
		{"case folded", "select a into @x", "INTO", 0, 9},
		{"none", "SELECT a FROM t", "into", 0, -1},
		{"empty", "", "into", 0, -1},
		{"at the start", "INTO x", "into", 0, 0},
		{"from an offset", "SELECT 1 INTO @a; SELECT 2 INTO @b", "into", 10, 27},
		{"offset inside the word", "SELECT 1 INTO @a", "into", 10, -1},
		{"part of a longer word", "SELECT into_x, xinto FROM t", "into", 0, -1},
		{"single-quoted", "SELECT 'into' INTO @x", "into", 0, 14},
		{"escaped quote in a string", `SELECT 'a\' into' INTO @x`, "into", 0, 18},
		{"doubled quote in a string", "SELECT 'a'' into' INTO @x", "into", 0, 18},
		{"double-quoted", `SELECT "into" INTO @x`, "into", 0, 14},
		{"backquoted", "SELECT `into` INTO @x", "into", 0, 14},
		{"backslash in a backquoted name", "SELECT `a\\` INTO @x", "into", 0, 12},
		{"unterminated string", "SELECT 'into", "into", 0, -1},
		{"block comment", "SELECT /* into */ a INTO @x", "into", 0, 20},
		{"block comment left open before it", "SELECT /* a INTO @x", "into", 0, -1},
		{"block comment left open after it", "SELECT a INTO @x /* b", "into", 0, 9},
		{"line comment", "SELECT a -- into\nINTO @x", "into", 0, 17},
		{"line comment at the end", "SELECT a --", "into", 0, -1},
		{"double minus without a space", "SELECT 1--1 INTO @x", "into", 0, 12},
		{"hash comment", "SELECT a # into\nINTO @x", "into", 0, 16},
		{"in parentheses", "SELECT (SELECT 1 INTO @x) FROM t", "into", 0, -1},
		{"after parentheses", "SELECT (1) INTO @x", "into", 0, 11},
		{"unbalanced close", "SELECT 1) INTO @x", "into", 0, -1},
		{"qualified", "SELECT t.into FROM t", "into", 0, -1},
		{"qualified across spaces", "SELECT t . into FROM t", "into", 0, -1},
		{"multi-byte identifier", "SELECT é INTO @x", "into", 0, 10},
		{"glued to a multi-byte byte", "SELECT éinto", "into", 0, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Keyword(tc.sql, tc.from, tc.word); got != tc.want {
				t.Errorf("Keyword(%q, %d, %q) = %d, want %d", tc.sql, tc.from, tc.word, got, tc.want)
			}
		})
	}
}

// TestTopLevel pins what the shared scanner hands its callers: words and other bytes
// (spaces left out here) with their parenthesis depth, nothing from strings, quoted
// identifiers or comments, and whether it reached the end.
func TestTopLevel(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
		stopAt    string // visit returns false on this token
		want      string
		whole     bool
	}{
		{"words and bytes", "SELECT a,b1 FROM t;", "", "SELECT@0 a@0 ,@0 b1@0 FROM@0 t@0 ;@0", true},
		{"parentheses", "f(a, (b)) c", "", "f@0 (@0 a@1 ,@1 (@1 b@2 )@1 )@0 c@0", true},
		{"unbalanced close", ") a", "", ")@-1 a@-1", true},
		{"strings and quoted names skipped", `'x' "y" ` + "`z`" + ` w`, "", "w@0", true},
		{"comments skipped", "a /* b */ c -- d\ne # f\ng", "", "a@0 c@0 e@0 g@0", true},
		{"minus minus without a space", "1--2", "", "1@0 -@0 -@0 2@0", true},
		{"open block comment", "a /* b", "", "a@0", false},
		{"stopped", "a b c", "b", "a@0 b@0", false},
		{"multi-byte word", "é.x", "", "é@0 .@0 x@0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			whole := TopLevel(tc.sql, 0, func(start, end, depth int) bool {
				if tok := tc.sql[start:end]; !IsSpace(tok[0]) {
					got = append(got, fmt.Sprintf("%s@%d", tok, depth))
				}
				return tc.sql[start:end] != tc.stopAt
			})
			if s := strings.Join(got, " "); s != tc.want || whole != tc.whole {
				t.Errorf("TopLevel(%q) = %q, %v; want %q, %v", tc.sql, s, whole, tc.want, tc.whole)
			}
		})
	}
}

// TestScan pins the kinds Scan gives its tokens: quoted tokens and closed comments whole,
// with the depth around them; a block comment left open is not visited.
func TestScan(t *testing.T) {
	kinds := map[Kind]string{Word: "w", Other: "o", Quoted: "q", Comment: "c"}
	for _, tc := range []struct {
		name, sql string
		want      string
		whole     bool
	}{
		{"words, strings, names", "a 'b' \"c\" `d`", "w:a@0 q:'b'@0 q:\"c\"@0 q:`d`@0", true},
		{"comments", "a /* b */ -- c\n# d", "w:a@0 c:/* b */@0 c:-- c@0 c:# d@0", true},
		{"in parentheses", "(a 'b' /* c */)", "o:(@0 w:a@1 q:'b'@1 c:/* c */@1 o:)@0", true},
		{"open block comment", "a /* b", "w:a@0", false},
		{"unterminated string", "a 'b", "w:a@0 q:'b@0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			whole := Scan(tc.sql, 0, func(tok Token) bool {
				if s := tc.sql[tok.Start:tok.End]; !IsSpace(s[0]) {
					got = append(got, fmt.Sprintf("%s:%s@%d", kinds[tok.Kind], s, tok.Depth))
				}
				return true
			})
			if s := strings.Join(got, " "); s != tc.want || whole != tc.whole {
				t.Errorf("Scan(%q) = %q, %v; want %q, %v", tc.sql, s, whole, tc.want, tc.whole)
			}
		})
	}
}
