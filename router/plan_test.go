package router

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner"
	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

var update = flag.Bool("update", false, "rewrite the expectations in router/planner/testdata/*.json with the planner's output")

// planCase is one golden case (plantest.Case).
type planCase = plantest.Case

// newTestSession returns a session of user on a router over cfg, with connection id 42
// and no backend (planning does no I/O).
func newTestSession(t *testing.T, cfg *rules.Config, user, db string) (*Session, *rules.Snapshot) {
	t.Helper()
	snap, err := rules.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := New(Options{Rules: rules.NewStore(snap)})
	s, err := r.NewSession(context.Background(), SessionInfo{ConnID: 42, User: user, Collation: 45})
	if err != nil {
		t.Fatal(err)
	}
	if db != "" {
		if err := s.useDB(snap, db); err != nil {
			t.Fatal(err)
		}
	}
	return s, snap
}

// runPlan plans c.Query and returns the outcome in c's shape.
func runPlan(t *testing.T, cfg *rules.Config, c planCase) planCase {
	t.Helper()
	user := c.User
	if user == "" {
		user = "app"
	}
	s, snap := newTestSession(t, cfg, user, c.DB)
	s.ids.last = c.LastInsertID
	got := planCase{Comment: c.Comment, Query: c.Query, DB: c.DB, User: c.User, LastInsertID: c.LastInsertID, Params: c.Params}
	if r, ok := planner.ExplainText(c.Query, s.parseOne); ok {
		ep, err := s.planner(snap).PlanExplain(snap, r)
		switch {
		case err != nil:
			got.Error = err.Error()
		case ep.Labelled:
			for _, t := range ep.Targets {
				got.Explain = append(got.Explain, t.Shard.Name+": "+t.SQL)
			}
		default:
			d := (&plan.Route{Attrs: *ep.P.Attributes(), Shard: ep.Targets[0].Shard, SQL: ep.Targets[0].SQL}).Describe()
			got.Plan = &d
		}
		return got
	}
	stmts, err := s.parse(c.Query)
	if err == nil && len(stmts) != 1 {
		t.Fatalf("%d statements in %q", len(stmts), c.Query)
	}
	if err == nil {
		if lock, ok := stmts[0].(*ast.LockTablesStmt); ok {
			targets, fanned, err := s.planner(snap).PlanLock(snap, lock)
			switch {
			case err != nil:
				got.Error = err.Error()
			case fanned:
				for _, t := range targets {
					got.Explain = append(got.Explain, t.Shard.Name+": "+t.SQL)
				}
			}
			if err != nil || fanned {
				return got
			}
		}
	}
	var p plan.Primitive
	if err == nil {
		if c.Params != nil {
			p, err = s.plan(snap, stmts[0], c.Query, int64Params(c.Params))
		} else {
			p, err = s.planner(snap).PlanStatement(snap, stmts[0], c.Query)
		}
	}
	if err != nil {
		got.Error = err.Error()
		return got
	}
	d := p.Describe()
	got.Plan = &d
	if r, ok := plan.RouteOf(p); ok && c.Params != nil {
		got.Bound = runBound(t, s, snap, c, r)
	}
	return got
}

// runBound prepares c.Query (planned without its parameters, as PREPARE does) and resolves
// its bound route with c.Params; it reports whether the route resolved, and fails the test
// when it resolved elsewhere than full planning (want) does.
func runBound(t *testing.T, s *Session, snap *rules.Snapshot, c planCase, want *plan.Route) bool {
	t.Helper()
	stmts, err := s.parse(c.Query)
	if err != nil {
		t.Fatal(err)
	}
	prep, err := s.describe(snap, stmts[0], c.Query)
	if err != nil {
		return false
	}
	shard, sql, cols, ok := boundOf(prep).Resolve(execViewOf(s), snap, int64Params(c.Params))
	if ok && (shard != want.Shard || sql != want.SQL || !reflect.DeepEqual(cols, want.Columns)) {
		t.Errorf("bound route: %s %q %v, planned: %s %q %v", shard.Name, sql, cols, want.Shard.Name, want.SQL, want.Columns)
	}
	return ok
}

// int64Params binds values as BIGINT parameters; nil stays nil (planning at prepare time).
func int64Params(vs []int64) []wire.Param {
	if vs == nil {
		return nil
	}
	out := make([]wire.Param, len(vs))
	for i, v := range vs {
		out[i] = wire.Param{Type: mysql.MYSQL_TYPE_LONGLONG, Value: binary.LittleEndian.AppendUint64(nil, uint64(v))}
	}
	return out
}

// runGolden runs every case of file against cfg, one subtest each; with -update it writes
// the planner's output back (except for cases marked as bugs).
func runGolden(t *testing.T, file string, cfg func() *rules.Config) {
	golden(t, file, func(c planCase) (string, string) { return c.Comment, c.Query },
		func(t *testing.T, c planCase) planCase { return runPlan(t, cfg(), c) }, show)
}

// golden runs every case of the fixture file (plantest.Fixture), one subtest each named by its comment: run's
// outcome must equal the case; with -update the outcomes are written back to the file.
// name gives a case's comment and query, show how a case is printed in a failure.
func golden[C any](t *testing.T, file string, name func(C) (comment, query string), run func(*testing.T, C) C, show func(C) string) {
	path := plantest.Fixture(file)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases []C
	dec := json.NewDecoder(bytes.NewReader(data))
	if !*update { // -update drops fields the cases no longer have
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&cases); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	seen := map[string]bool{}
	for i, c := range cases {
		comment, query := name(c)
		if seen[comment] {
			t.Fatalf("%s: duplicate comment %q", path, comment)
		}
		seen[comment] = true
		t.Run(comment, func(t *testing.T) {
			got := run(t, c)
			if *update {
				cases[i] = got
				return
			}
			if !reflect.DeepEqual(got, c) {
				t.Errorf("query %q\n got: %s\nwant: %s", query, show(got), show(c))
			}
		})
	}
	if *update {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(cases); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func show(c planCase) string {
	b, _ := json.Marshal(struct {
		Plan    *plan.Description `json:"plan,omitempty"`
		Error   string            `json:"error,omitempty"`
		Bound   bool              `json:"bound,omitempty"`
		Explain []string          `json:"explain,omitempty"`
	}{c.Plan, c.Error, c.Bound, c.Explain})
	return string(b)
}

func TestPlanPassthrough(t *testing.T) {
	runGolden(t, "plan_passthrough.json", plantest.PassthroughConfig)
}

func TestPlanSharded(t *testing.T) {
	runGolden(t, "plan_sharded.json", plantest.ShardedConfig)
}

// TestHashSlots pins the slots of the user ids the sharded golden cases use, so that a
// change of hash function shows here first (the hash itself is pinned to xxHash64 by
// rules.TestHashKeyVectors).
func TestHashSlots(t *testing.T) {
	f := rules.HashFunc{N: 4}
	want := map[int64]int{1: 1, 2: 0, 3: 1, 4: 3, 5: 1, 6: 3, 7: 1, 8: 2}
	for id, slot := range want {
		got, err := f.Slot(rules.IntValue(id))
		if err != nil {
			t.Fatal(err)
		}
		if got != slot {
			t.Errorf("user id %d: slot %d, want %d", id, got, slot)
		}
	}
}
