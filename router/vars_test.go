package router

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/rules"
)

func TestLiteral(t *testing.T) {
	cases := []struct{ in, want string }{
		{"1", "1"},
		{"0", "0"},
		{"-5", "-5"},
		{"28800", "28800"},
		{"10.000000", "10.000000"},
		{"-0.5", "-0.5"},
		{"18446744073709551615", "18446744073709551615"},
		{"ON", "'ON'"},
		{"", "''"},
		{"utf8mb4_general_ci", "'utf8mb4_general_ci'"},
		{"STRICT_TRANS_TABLES,NO_ZERO_DATE", "'STRICT_TRANS_TABLES,NO_ZERO_DATE'"},
		{"+00:00", "'+00:00'"},
		{"1e5", "'1e5'"},
		{".5", "'.5'"},
		{"5.", "'5.'"},
		{"-", "'-'"},
		{"1 ", "'1 '"},
		{"0x10", "'0x10'"},
		{"REPEATABLE-READ", "'REPEATABLE-READ'"},
	}
	for _, c := range cases {
		if got := literal(c.in); got != c.want {
			t.Errorf("literal(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestVarOrder(t *testing.T) {
	names := []string{
		"sql_mode", "collation_connection", "autocommit", "character_set_results",
		"character_set_client", "time_zone", "character_set_connection",
	}
	slices.SortFunc(names, varOrder)
	want := []string{
		"character_set_client", "character_set_connection", "character_set_results",
		"collation_connection",
		"autocommit", "sql_mode", "time_zone",
	}
	if !slices.Equal(names, want) {
		t.Errorf("sorted %q\nwant %q", names, want)
	}
	if varOrder("a", "a") != 0 {
		t.Error("varOrder(a, a) != 0")
	}
}

func TestLikeRegexp(t *testing.T) {
	cases := []struct {
		pat   string
		match []string
		no    []string
	}{
		{"%", []string{"", "shop", "a\nb"}, nil},
		{"shop", []string{"shop", "SHOP", "Shop"}, []string{"shops", "shop_0", "xshop"}},
		{"sh_p", []string{"shop", "ship", "SH P"}, []string{"shp", "shoop"}},
		{"s%", []string{"s", "shop", "sys"}, []string{"blog", "xs"}},
		{"%_0", []string{"shop_0", "a0"}, []string{"0", "shop_1"}},
		{`shop\_0`, []string{"shop_0"}, []string{"shopx0"}},
		{`100\%`, []string{"100%"}, []string{"1000", "100"}},
		{"a.b", []string{"a.b"}, []string{"axb"}},
		{"a+b*(c)[d]{e}|^$", []string{"a+b*(c)[d]{e}|^$"}, []string{"aab"}},
		{"ünï%", []string{"ünïcode", "ÜNÏ"}, []string{"uni"}},
		{"", []string{""}, []string{"a"}},
	}
	for _, c := range cases {
		re := planner.LikeRegexp(c.pat)
		for _, s := range c.match {
			if !re.MatchString(s) {
				t.Errorf("%q LIKE %q = false, want true", s, c.pat)
			}
		}
		for _, s := range c.no {
			if re.MatchString(s) {
				t.Errorf("%q LIKE %q = true, want false", s, c.pat)
			}
		}
	}
}

// TestLikeRegexpTrailingEscape: MySQL treats an escape character at the very end of a LIKE
// pattern as a literal (my_wildcmp: the escape applies only when a character follows), so
// 'ab\' matches the string `ab\` and not `ab`.
func TestLikeRegexpTrailingEscape(t *testing.T) {
	re := planner.LikeRegexp(`ab\`)
	if re.MatchString("ab") || !re.MatchString(`ab\`) {
		t.Errorf("likeRegexp(`ab\\`) = %s: must match `ab\\` and not `ab` (a trailing escape character is literal)", re)
	}
}

// TestSessionVarsReplace: values equal to the baseline are dropped, the rest get a
// fingerprint (key "") that two equal sets share; nothing left is nil.
func TestSessionVarsReplace(t *testing.T) {
	v := newSessionVars(map[string]string{"autocommit": "1", "sql_mode": "''"})
	v.replace(map[string]string{"autocommit": "1", "time_zone": "'+00:00'", "sql_mode": "'ANSI'"})
	if got := v.get("autocommit"); got != "" {
		t.Errorf("baseline value kept: autocommit %q", got)
	}
	if v.get("time_zone") != "'+00:00'" || v.get("sql_mode") != "'ANSI'" {
		t.Errorf("values %v", v.values)
	}
	if want := "sql_mode='ANSI';time_zone='+00:00';"; v.get("") != want {
		t.Errorf("fingerprint %q, want %q", v.get(""), want)
	}
	v.replace(map[string]string{"autocommit": "1", "": "stale"})
	if v.values != nil {
		t.Errorf("only baseline values left: %v, want nil", v.values)
	}
}

// TestSessionVarsAssignments: a connection is brought to the session's variables by SET
// NAMES order (character sets, then collations, then the rest), variables the session no
// longer sets go back to the baseline or DEFAULT, and a matching fingerprint sends nothing.
func TestSessionVarsAssignments(t *testing.T) {
	v := newSessionVars(map[string]string{"autocommit": "1"})
	v.replace(map[string]string{"collation_connection": "'latin1_swedish_ci'", "character_set_client": "'latin1'", "sql_mode": "'ANSI'"})
	cur := map[string]string{"sql_mode": "'ANSI'", "autocommit": "0", "time_zone": "'+01:00'", "": "other"}
	got := v.assignments(cur)
	want := []string{"character_set_client = 'latin1'", "collation_connection = 'latin1_swedish_ci'", "autocommit = 1", "time_zone = DEFAULT"}
	if !slices.Equal(got, want) {
		t.Errorf("assignments\n got %q\nwant %q", got, want)
	}
	if got := v.assignments(v.values); got != nil {
		t.Errorf("same fingerprint: %q, want none", got)
	}
	fresh := newSessionVars(nil)
	if got := fresh.assignments(nil); got != nil {
		t.Errorf("fresh connection, fresh session: %q, want none", got)
	}
}

// TestSessionVarsSQLMode: the parser and restore flags follow sql_mode, name by name.
func TestSessionVarsSQLMode(t *testing.T) {
	v := newSessionVars(nil)
	if !v.backslashEscapes() {
		t.Fatal("a fresh session escapes with backslashes")
	}
	mode := "ansi_quotes, NO_BACKSLASH_ESCAPES,EMPTY_STRING_IS_NULL"
	v.setSQLMode(&mode)
	if v.backslashEscapes() || v.restoreFlags == planner.DefaultRestoreFlags {
		t.Errorf("NO_BACKSLASH_ESCAPES: restore flags %v", v.restoreFlags)
	}
	stmts, _, err := v.parser.Parse(`SELECT "a" FROM t`, "", "")
	if err != nil || len(stmts) != 1 {
		t.Fatalf("parse: %v", err)
	}
	if _, ok := stmts[0].(*ast.SelectStmt).Fields.Fields[0].Expr.(*ast.ColumnNameExpr); !ok {
		t.Errorf("ANSI_QUOTES (next to a name the parser does not know): \"a\" read as %T", stmts[0].(*ast.SelectStmt).Fields.Fields[0].Expr)
	}
	v.setSQLMode(nil)
	if !v.backslashEscapes() || v.restoreFlags != planner.DefaultRestoreFlags {
		t.Errorf("sql_mode back to none: restore flags %v", v.restoreFlags)
	}
}

// TestSessionVarsReset: a reset keeps the character set and collation, and nothing else.
func TestSessionVarsReset(t *testing.T) {
	v := newSessionVars(map[string]string{"autocommit": "1"})
	mode := "NO_BACKSLASH_ESCAPES"
	v.setSQLMode(&mode)
	v.replace(map[string]string{"character_set_client": "'latin1'", "collation_connection": "'latin1_bin'", "sql_mode": "'NO_BACKSLASH_ESCAPES'"})
	v.execTime, v.execTimeSet = time.Second, true
	v.reset()
	if v.get("sql_mode") != "" || v.get("character_set_client") != "'latin1'" || v.get("collation_connection") != "'latin1_bin'" {
		t.Errorf("after reset: %v", v.values)
	}
	if v.execTime != 0 || v.execTimeSet || !v.backslashEscapes() {
		t.Errorf("after reset: deadline %v (set %v), backslash escapes %v", v.execTime, v.execTimeSet, v.backslashEscapes())
	}
}

// TestSessionVarsSetDeadline: the proxy's own variables leave the SET, the others stay.
func TestSessionVarsSetDeadline(t *testing.T) {
	v := newSessionVars(nil)
	st := parseOneForTest(t, "SET max_execution_time = 250, sql_mode = 'ANSI'").(*ast.SetStmt)
	found, err := v.setDeadline(st)
	if err != nil || !found || len(st.Variables) != 1 || st.Variables[0].Name != "sql_mode" {
		t.Fatalf("setDeadline: %v, %v; left %d variables", found, err, len(st.Variables))
	}
	if v.execTime != 250*time.Millisecond || !v.execTimeSet {
		t.Errorf("deadline %v (set %v)", v.execTime, v.execTimeSet)
	}
	st = parseOneForTest(t, "SET max_statement_time = DEFAULT").(*ast.SetStmt)
	if found, err := v.setDeadline(st); err != nil || !found || v.execTimeSet || v.execTime != 0 {
		t.Errorf("DEFAULT: %v, %v; deadline %v (set %v)", found, err, v.execTime, v.execTimeSet)
	}
	st = parseOneForTest(t, "SET time_zone = '+00:00'").(*ast.SetStmt)
	if found, err := v.setDeadline(st); err != nil || found || len(st.Variables) != 1 {
		t.Errorf("no deadline variable: %v, %v, %d left", found, err, len(st.Variables))
	}
}

// TestSessionVarsPrepareConn: a connection is brought to the session's database and
// variables once; a connection that already holds them is sent nothing. readBack makes
// what the backend reports the session's, and the connection's.
func TestSessionVarsPrepareConn(t *testing.T) {
	ctx := context.Background()
	be := newFakeBackend()
	c, _ := be.Acquire(ctx, &rules.Shard{Name: "s0"}, rules.RolePrimary)
	v := newSessionVars(map[string]string{"autocommit": "1"})
	v.replace(map[string]string{"time_zone": "'+00:00'"})
	if err := v.prepareConn(ctx, c, "blog_p"); err != nil {
		t.Fatal(err)
	}
	if err := v.prepareConn(ctx, c, "blog_p"); err != nil {
		t.Fatal(err)
	}
	want := []string{"s0#1: USE blog_p", "s0#1: SET SESSION time_zone = '+00:00'"}
	if log := be.takeLog(); !slices.Equal(log, want) {
		t.Errorf("sent %q, want %q", log, want)
	}
	be.values["sql_mode"] = "ANSI_QUOTES"
	if err := v.readBack(ctx, c, []string{"sql_mode", "autocommit"}); err != nil {
		t.Fatal(err)
	}
	if v.get("sql_mode") != "'ANSI_QUOTES'" || v.get("autocommit") != "" || v.get("time_zone") != "'+00:00'" {
		t.Errorf("after reading back: %v", v.values)
	}
	if c.State().Vars()[""] != v.get("") {
		t.Errorf("the connection holds %v, the session %v", c.State().Vars(), v.values)
	}
	be.takeLog()
	if err := v.prepareConn(ctx, c, "blog_p"); err != nil {
		t.Fatal(err)
	}
	if log := be.takeLog(); len(log) != 0 {
		t.Errorf("a connection that read back the session's state was sent %q", log)
	}
}
