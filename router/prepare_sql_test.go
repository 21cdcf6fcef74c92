package router

import (
	"testing"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/planner"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// TestSQLStmts: SQL-level prepared statements are named case-insensitively, and a PREPARE
// of a name in use replaces the statement.
func TestSQLStmts(t *testing.T) {
	var r sqlStmts
	if _, ok := r.get("s"); ok {
		t.Fatal("a fresh session has a prepared statement")
	}
	s0, s1 := &rules.Shard{Name: "s0"}, &rules.Shard{Name: "s1"}
	r.put("Stmt", sqlStmt{shard: s0})
	r.put("STMT", sqlStmt{shard: s1, write: true})
	if ps, ok := r.get("stmt"); !ok || ps.shard != s1 || !ps.write {
		t.Errorf("get after two PREPAREs: %+v, %v", ps, ok)
	}
	if ps, ok := r.remove("sTmT"); !ok || ps.shard != s1 {
		t.Errorf("remove: %+v, %v", ps, ok)
	}
	if _, ok := r.remove("stmt"); ok {
		t.Error("a statement deallocated twice")
	}
}

// TestBindImmediate: each ? of an EXECUTE IMMEDIATE's text takes its USING value, in text
// order; a count that does not match is ER_WRONG_ARGUMENTS.
func TestBindImmediate(t *testing.T) {
	text := "SELECT ? + a, '?' FROM t WHERE b = ?"
	st := parseOneForTest(t, text)
	args, err := exprList(func(sql string) (ast.StmtNode, error) { return parseOneForTest(t, sql), nil }, "1, 'x''y'")
	if err != nil {
		t.Fatal(err)
	}
	got, err := bindImmediate(planner.DefaultRestoreFlags, nil, st, text, args)
	if want := "SELECT 1 + a, '?' FROM t WHERE b = 'x''y'"; err != nil || got != want {
		t.Errorf("bound %q, %v; want %q", got, err, want)
	}
	if _, err := bindImmediate(planner.DefaultRestoreFlags, nil, st, text, args[:1]); sqlCode(err) != sqlerr.ErWrongArguments {
		t.Errorf("one value for two markers: %v", err)
	}
	if _, err := exprList(func(sql string) (ast.StmtNode, error) { return parseOneForTest(t, sql), nil }, "1 AS one"); sqlCode(err) != sqlerr.ErParse {
		t.Errorf("a USING value with an alias: %v", err)
	}
}
