package router

import "testing"

// TestCheckTextSandboxMarker: mariadb-dump's first line, /*M!999999\- enable the sandbox
// mode */, is a comment to every server (it runs from MariaDB 99.99.99 on) and passes the
// barrier; any other MariaDB executable comment is still refused.
func TestCheckTextSandboxMarker(t *testing.T) {
	for _, tc := range []struct {
		sql string
		ok  bool
	}{
		{"/*M!999999\\- enable the sandbox mode */ \n/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */", true},
		{"/*m!999999 anything */ SELECT 1", true},
		{"/*M!999999 x */ SELECT 1 /*M!100000 , (SELECT 2) */", false},
		{"SELECT 1 /*M!, (SELECT 2) */", false},
		{"SELECT 1 /*M!99999 , (SELECT 2) */", false},
	} {
		if err := checkText(tc.sql); (err == nil) != tc.ok {
			t.Errorf("checkText(%q) = %v, want ok %v", tc.sql, err, tc.ok)
		}
	}
}

// TestNextStatement: a batch is cut at semicolons outside strings, quoted names and
// comments, under the session's backslash rule.
func TestNextStatement(t *testing.T) {
	for _, tc := range []struct {
		sql       string
		backslash bool
		want      []string
	}{
		{"SELECT 1; SELECT 2", true, []string{"SELECT 1", " SELECT 2"}},
		{"SELECT 'a;b'; SELECT \"c;d\"", true, []string{"SELECT 'a;b'", " SELECT \"c;d\""}},
		{`SELECT 'it\'s;'; SELECT 2`, true, []string{`SELECT 'it\'s;'`, " SELECT 2"}},
		{`SELECT 'a\'; SELECT 2`, false, []string{`SELECT 'a\'`, " SELECT 2"}},
		{"SELECT 'it''s;'; SELECT 2", true, []string{"SELECT 'it''s;'", " SELECT 2"}},
		{"SELECT `a;b` FROM t; SELECT 2", true, []string{"SELECT `a;b` FROM t", " SELECT 2"}},
		{"SELECT 1 /* ; */; -- x;y\nSELECT 2 # z;\n", true, []string{"SELECT 1 /* ; */", " -- x;y\nSELECT 2 # z;\n"}},
		{"SELECT 1--1; SELECT 2", true, []string{"SELECT 1--1", " SELECT 2"}},
		{"SELECT 'unterminated; SELECT 2", true, []string{"SELECT 'unterminated; SELECT 2"}},
	} {
		var got []string
		for rest := tc.sql; rest != ""; {
			var st string
			st, rest = nextStatement(rest, tc.backslash)
			got = append(got, st)
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: %q, want %q", tc.sql, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: %q, want %q", tc.sql, got, tc.want)
				break
			}
		}
	}
	for _, tc := range []struct {
		sql   string
		blank bool
	}{
		{"", true}, {" ; \n", true}, {"/* c */ -- d\n# e", true}, {"/* c */ x", false}, {"--x", false},
	} {
		if got := blankSQL(tc.sql, true); got != tc.blank {
			t.Errorf("blankSQL(%q) = %v", tc.sql, got)
		}
	}
}
