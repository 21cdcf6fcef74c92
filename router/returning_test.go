package router

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
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
			stmt, clause, ok := splitReturning(tc.sql)
			if ok != tc.ok || stmt != tc.stmt || clause != tc.clause {
				t.Errorf("splitReturning(%q) = %q, %q, %v; want %q, %q, %v", tc.sql, stmt, clause, ok, tc.stmt, tc.clause, tc.ok)
			}
		})
	}
}

// TestSessionReturning: in a sharded database an INSERT/DELETE ... RETURNING is routed and
// renamed like the statement without the clause, and reaches the shard with the clause.
func TestSessionReturning(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, shardedRouter(t, be), "app", 1)
	s.db = "shop"
	ctx := context.Background()
	var w clientRecorder
	exec(t, s, "INSERT INTO accounts (account_id, owner) VALUES (3, 'returning') RETURNING account_id, `owner`", &w)
	exec(t, s, "DELETE FROM orders WHERE user_id = 1 RETURNING *", &w)
	wantLog(t, be,
		"s1#1: USE shop_s1",
		"s1#1: INSERT INTO `accounts_0003` (`account_id`,`owner`) VALUES (3,'returning') RETURNING account_id, `owner`",
		"s1#1: DELETE FROM orders WHERE user_id = 1 RETURNING *",
	)
	for _, sql := range []string{
		"INSERT INTO accounts (account_id) VALUES (1), (2) RETURNING account_id", // two shards
		"DELETE FROM accounts RETURNING account_id",                              // every shard
	} {
		if err := s.Query(ctx, sql, false, &w); sqlCode(err) != sqlerr.ErNotSupportedYet {
			t.Errorf("%s: %v, want 1235", sql, err)
		}
	}
	if err := s.Query(ctx, "INSERT INTO accounts VALUES (1) RETRNING x", false, &w); sqlCode(err) != sqlerr.ErParse {
		t.Errorf("a syntax error without RETURNING: %v, want 1064", err)
	}

	st, err := s.Prepare(ctx, "INSERT INTO accounts (account_id, owner) VALUES (?, 'x') RETURNING account_id")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Execute(ctx, st, []wire.Param{intParam(5)}, &w); err != nil {
		t.Fatal(err)
	}
	wantLog(t, be,
		"s0#2: USE shop_s0",
		"s0#2: PREPARE INSERT INTO `accounts_0000` (`account_id`,`owner`) VALUES (?,'x') RETURNING account_id",
		"s2#3: USE shop_s2",
		"s2#3: PREPARE INSERT INTO `accounts_0005` (`account_id`,`owner`) VALUES (?,'x') RETURNING account_id",
		"s2#3: EXECUTE 2 "+fmt.Sprintf("% x", append([]byte{0, 1, 0x08, 0}, binary.LittleEndian.AppendUint64(nil, 5)...)),
	)
}

// TestSplitReturningEdges pins splitReturning where its scan differs from sqlscan.Keyword's:
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
			stmt, clause, ok := splitReturning(tc.sql)
			if ok != tc.ok || stmt != tc.stmt || clause != tc.clause {
				t.Errorf("splitReturning(%q) = %q, %q, %v; want %q, %q, %v", tc.sql, stmt, clause, ok, tc.stmt, tc.clause, tc.ok)
			}
		})
	}
}
