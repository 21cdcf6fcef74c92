package planner

import (
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/router/planner/plantest"
	"github.com/shardproxy/shardproxy/sqlerr"
)

func TestSplitReturning(t *testing.T) {
	for _, tc := range []struct {
		name, sql    string
		stmt, clause string
		ok           bool
	}{
		{"gorm insert", "INSERT INTO `orders` (`user_id`,`total`) VALUES (?,?) RETURNING `id`,`status`",
			"INSERT INTO `orders` (`user_id`,`total`) VALUES (?,?)", "RETURNING `id`,`status`", true},
		{"lower case, trailing semicolon", "insert into t (a) values (1) returning a, b * 2 as c;",
			"insert into t (a) values (1)", "returning a, b * 2 as c", true},
		{"delete", "DELETE FROM t WHERE k = 3 RETURNING *", "DELETE FROM t WHERE k = 3", "RETURNING *", true},
		{"replace", "REPLACE INTO t VALUES (1)\nRETURNING\tid", "REPLACE INTO t VALUES (1)", "RETURNING\tid", true},
		{"none", "INSERT INTO t VALUES (1)", "", "", false},
		{"in a string", "INSERT INTO t VALUES ('x returning y')", "", "", false},
		{"string with escaped quote before it", `INSERT INTO t VALUES ('it\'s returning') RETURNING id`,
			`INSERT INTO t VALUES ('it\'s returning')`, "RETURNING id", true},
		{"string with doubled quote", "INSERT INTO t VALUES ('a'' returning') RETURNING id",
			"INSERT INTO t VALUES ('a'' returning')", "RETURNING id", true},
		{"double-quoted string", `INSERT INTO t VALUES ("returning") RETURNING id`, `INSERT INTO t VALUES ("returning")`, "RETURNING id", true},
		{"backquoted column", "INSERT INTO t (`returning`) VALUES (1)", "", "", false},
		{"backquoted column then clause", "INSERT INTO t (`returning`) VALUES (1) RETURNING `returning`",
			"INSERT INTO t (`returning`) VALUES (1)", "RETURNING `returning`", true},
		{"block comment", "INSERT INTO t VALUES (1) /* returning id */", "", "", false},
		{"block comment before clause", "INSERT /* returning */ INTO t VALUES (1) RETURNING id",
			"INSERT /* returning */ INTO t VALUES (1)", "RETURNING id", true},
		{"line comment", "INSERT INTO t VALUES (1) -- returning id", "", "", false},
		{"hash comment", "INSERT INTO t VALUES (1) # returning id\n", "", "", false},
		{"double minus is not a comment without a space", "INSERT INTO t VALUES (1--1) RETURNING id",
			"INSERT INTO t VALUES (1--1)", "RETURNING id", true},
		{"word containing it", "INSERT INTO t (returning_id, nonreturning) VALUES (1, 2)", "", "", false},
		{"qualified column", "DELETE FROM t WHERE t.returning = 1", "", "", false},
		{"inside parentheses", "INSERT INTO t SELECT * FROM (SELECT 1 returning) x", "", "", false},
		{"another statement follows", "INSERT INTO t VALUES (1) RETURNING id; DROP TABLE t", "", "", false},
		{"unterminated comment", "INSERT INTO t VALUES (1) /* RETURNING id", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stmt, clause, ok := SplitReturning(tc.sql)
			if ok != tc.ok || stmt != tc.stmt || clause != tc.clause {
				t.Errorf("SplitReturning(%q) = %q, %q, %v; want %q, %q, %v", tc.sql, stmt, clause, ok, tc.stmt, tc.clause, tc.ok)
			}
		})
	}
}

// TestSplitReturningEdges pins SplitReturning where its scan differs from sqlscan.Keyword's:
// it goes on past the keyword to refuse a second statement, and refuses a comment left
// open anywhere.
func TestSplitReturningEdges(t *testing.T) {
	for _, tc := range []struct {
		name, sql    string
		stmt, clause string
		ok           bool
	}{
		{"semicolon then spaces", "DELETE FROM t RETURNING id;  \n", "DELETE FROM t", "RETURNING id", true},
		{"two semicolons", "DELETE FROM t RETURNING id;;", "", "", false},
		{"semicolon in a string after it", "DELETE FROM t RETURNING ';x'", "DELETE FROM t", "RETURNING ';x'", true},
		{"semicolon in a comment after it", "DELETE FROM t RETURNING id /* ; x */", "DELETE FROM t", "RETURNING id /* ; x */", true},
		{"statement before it", "DELETE FROM t; DELETE FROM u RETURNING id", "DELETE FROM t; DELETE FROM u", "RETURNING id", true},
		{"comment left open after it", "DELETE FROM t RETURNING id /* x", "", "", false},
		{"first of two", "DELETE FROM t RETURNING returning", "DELETE FROM t", "RETURNING returning", true},
		{"qualified, then the keyword", "DELETE FROM t WHERE t.returning = 1 RETURNING id",
			"DELETE FROM t WHERE t.returning = 1", "RETURNING id", true},
		{"in parentheses, then the keyword", "INSERT INTO t SELECT * FROM (SELECT 1 returning) x RETURNING id",
			"INSERT INTO t SELECT * FROM (SELECT 1 returning) x", "RETURNING id", true},
		{"unbalanced close", "DELETE FROM t) RETURNING id", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stmt, clause, ok := SplitReturning(tc.sql)
			if ok != tc.ok || stmt != tc.stmt || clause != tc.clause {
				t.Errorf("SplitReturning(%q) = %q, %q, %v; want %q, %q, %v", tc.sql, stmt, clause, ok, tc.stmt, tc.clause, tc.ok)
			}
		})
	}
}

// TestReturningStmt: only an INSERT, REPLACE or DELETE the parser reads without its
// RETURNING clause is one; the clause goes back on a plan for one shard only.
func TestReturningStmt(t *testing.T) {
	for sql, want := range map[string]bool{
		"INSERT INTO t (a) VALUES (1) RETURNING id":    true,
		"REPLACE INTO t VALUES (1) RETURNING *":        true,
		"DELETE FROM t WHERE a = 1 RETURNING a":        true,
		"UPDATE t SET a = 1 RETURNING a":               false,
		"SELECT 1 RETURNING a":                         false,
		"INSERT INTO t VALUES (1,) RETURNING id":       false, // the rest does not parse either
		"INSERT INTO t VALUES (1); SELECT 1 RETURNING": false,
	} {
		st, text, clause, ok := ReturningStmt(sql, parseOne)
		if ok != want || ok && (st == nil || text == "" || clause == "") {
			t.Errorf("ReturningStmt(%q) = %v, %q, %q, %v; want ok %v", sql, st, text, clause, ok, want)
		}
	}
	snap := build(t, plantest.ShardedConfig())
	pl := &Planner{DB: "shop", User: "app", RestoreFlags: DefaultRestoreFlags}
	one := "INSERT INTO orders (id, user_id) VALUES (1, 2)"
	p, err := pl.Plan(snap, parseStmt(t, one), one, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = WithReturning(p, "RETURNING id"); err != nil {
		t.Fatal(err)
	}
	if r, ok := plan.RouteOf(p); !ok || !strings.HasSuffix(r.SQL, " RETURNING id") {
		t.Errorf("WithReturning: %+v", p)
	}
	multi := "INSERT INTO orders (id, user_id) VALUES (1, 1), (2, 2)"
	mp, err := pl.Plan(snap, parseStmt(t, multi), multi, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WithReturning(mp, "RETURNING id"); code(err) != sqlerr.ErNotSupportedYet {
		t.Errorf("WithReturning on several shards: %v", err)
	}
	if got, err := WithReturning(mp, ""); got != mp || err != nil {
		t.Errorf("WithReturning without a clause: %v, %v", got, err)
	}
}
