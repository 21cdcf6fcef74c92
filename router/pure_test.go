package router

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/router/planner"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// TestPlanningLeavesTreeAlone: planning reads the caller's tree and leaves it as it found
// it. Each statement of the golden fixtures and each prepared shape is parsed twice; one tree
// is planned (as a query, with its parameters, at PREPARE, as LOCK TABLES or EXPLAIN: the
// planner entries its case reaches), and must then equal the other, offsets included.
func TestPlanningLeavesTreeAlone(t *testing.T) {
	for _, f := range []struct {
		file string
		cfg  func() *rules.Config
	}{{"plan_sharded.json", plantest.ShardedConfig}, {"plan_passthrough.json", plantest.PassthroughConfig}} {
		data, err := os.ReadFile(plantest.Fixture(f.file))
		if err != nil {
			t.Fatal(err)
		}
		var cases []planCase
		if err := json.Unmarshal(data, &cases); err != nil {
			t.Fatalf("%s: %v", f.file, err)
		}
		for _, c := range cases {
			t.Run(f.file+"/"+c.Comment, func(t *testing.T) {
				user := c.User
				if user == "" {
					user = "app"
				}
				s, snap := newTestSession(t, f.cfg(), user, c.DB)
				s.ids.last = c.LastInsertID
				checkPure(t, s, snap, c.Query, int64Params(c.Params))
			})
		}
	}
	for _, c := range preparedShapes {
		t.Run("prepared/"+c.name, func(t *testing.T) {
			s, snap := newTestSession(t, plantest.ShardedConfig(), "app", "shop")
			s.ids.last = 7
			st, err := s.parseOne(c.sql)
			if err != nil {
				t.Fatal(err)
			}
			var markers planner.MarkerCollector
			st.Accept(&markers)
			params := make([]wire.Param, len(markers))
			for i := range params {
				params[i] = c.param(3, i)
			}
			checkPure(t, s, snap, c.sql, params)
		})
	}
}

// checkPure plans text (two trees per way of planning it) and fails at the first node of
// the planned tree that differs from the other; planning the same tree again must give the
// same plan.
func checkPure(t *testing.T, s *Session, snap *rules.Snapshot, text string, params []wire.Param) {
	t.Helper()
	if _, ok := planner.ExplainText(text, s.parseOne); ok {
		a, _ := planner.ExplainText(text, s.parseOne)
		b, _ := planner.ExplainText(text, s.parseOne)
		_, _ = s.planner(snap).PlanExplain(snap, a)
		if !reflect.DeepEqual(a.Stmt, b.Stmt) {
			t.Errorf("planning (EXPLAIN) changed the tree of %q at %s", a.Text, firstDiff(reflect.ValueOf(a.Stmt), reflect.ValueOf(b.Stmt)))
		}
		return
	}
	ways := map[string]func(st ast.StmtNode) string{
		"query": func(st ast.StmtNode) string {
			if lock, ok := st.(*ast.LockTablesStmt); ok {
				targets, _, err := s.planner(snap).PlanLock(snap, lock)
				return fmt.Sprint(targets, err)
			}
			return described(s.planner(snap).PlanStatement(snap, st, text))
		},
		"prepare": func(st ast.StmtNode) string { return described(s.describe(snap, st, text)) },
	}
	if params != nil {
		ways["execute"] = func(st ast.StmtNode) string { return described(s.plan(snap, st, text, params)) }
	}
	for way, plan := range ways {
		trees := [2]ast.StmtNode{}
		for i := range trees {
			stmts, err := s.parse(text)
			if err != nil || len(stmts) != 1 {
				return // the parser refuses it: nothing is planned
			}
			trees[i] = stmts[0]
		}
		first := plan(trees[0])
		if !reflect.DeepEqual(trees[0], trees[1]) {
			t.Errorf("planning (%s) changed the tree of %q at %s", way, text, firstDiff(reflect.ValueOf(trees[0]), reflect.ValueOf(trees[1])))
		}
		if again := plan(trees[0]); again != first {
			t.Errorf("planning (%s) the tree of %q again: %s, the first time: %s", way, text, again, first)
		}
	}
}

// described is a plan's description (or the error) as text, to compare two plannings.
func described(p plan.Primitive, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	b, _ := json.Marshal(p.Describe())
	return string(b)
}

// firstDiff is the path of the first value where a and b differ (reflect.DeepEqual's
// notion of equal), "" when they are deeply equal.
func firstDiff(a, b reflect.Value) string {
	return diffAt(a, b, "st", map[[2]uintptr]bool{})
}

// diffAt is firstDiff below path; seen holds the pointer pairs being compared already.
func diffAt(a, b reflect.Value, path string, seen map[[2]uintptr]bool) string {
	if a.IsValid() != b.IsValid() {
		return path + " (one side missing)"
	}
	if !a.IsValid() {
		return ""
	}
	if a.Type() != b.Type() {
		return fmt.Sprintf("%s: %s vs %s", path, a.Type(), b.Type())
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return fmt.Sprintf("%s: nil %v vs %v", path, a.IsNil(), b.IsNil())
			}
			return ""
		}
		if a.Kind() == reflect.Pointer {
			k := [2]uintptr{a.Pointer(), b.Pointer()}
			if seen[k] {
				return ""
			}
			seen[k] = true
			return diffAt(a.Elem(), b.Elem(), path, seen)
		}
		return diffAt(a.Elem(), b.Elem(), path+"."+"("+a.Elem().Type().String()+")", seen)
	case reflect.Struct:
		for i := range a.NumField() {
			if p := diffAt(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name, seen); p != "" {
				return p
			}
		}
		return ""
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: len %d vs %d", path, a.Len(), b.Len())
		}
		for i := range a.Len() {
			if p := diffAt(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i), seen); p != "" {
				return p
			}
		}
		return ""
	case reflect.Map:
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: len %d vs %d", path, a.Len(), b.Len())
		}
		for _, k := range a.MapKeys() {
			if p := diffAt(a.MapIndex(k), b.MapIndex(k), fmt.Sprintf("%s[%v]", path, k), seen); p != "" {
				return p
			}
		}
		return ""
	case reflect.Func:
		if !a.IsNil() || !b.IsNil() {
			return path + ": a func"
		}
		return ""
	}
	if a.CanInterface() && b.CanInterface() {
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			return fmt.Sprintf("%s: %v vs %v", path, a.Interface(), b.Interface())
		}
		return ""
	}
	if fmt.Sprint(a) != fmt.Sprint(b) { // an unexported field: compare what fmt prints of it
		return fmt.Sprintf("%s: %v vs %v", path, a, b)
	}
	return ""
}
