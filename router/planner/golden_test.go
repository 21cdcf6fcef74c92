package planner

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/router/planner/plantest"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// TestGoldenPlans plans every case of the golden fixtures with the planner alone: a
// Planner built from the case's session (database, user, last insert id, connection 42),
// the rules snapshot and the parsed statement, no session and no backend. The plan (or the
// error, or a LOCK TABLES' or a multi-shard EXPLAIN's targets) must be the one the fixture
// holds, which package router's golden test writes (-update) and checks through a session.
// Syntax errors are the session's to word: those are skipped.
func TestGoldenPlans(t *testing.T) {
	for file, cfg := range map[string]func() *rules.Config{
		"plan_sharded.json":     plantest.ShardedConfig,
		"plan_passthrough.json": plantest.PassthroughConfig,
	} {
		snap, err := rules.Build(cfg())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range goldenCases(t, file) {
			t.Run(strings.TrimSuffix(file, ".json")+"/"+c.Comment, func(t *testing.T) {
				var got plantest.Case
				if r, ok := ExplainText(c.Query, parseOne); ok {
					got = explainCase(snap, c, r)
				} else {
					if explainHead(c.Query) {
						t.Skip("EXPLAIN / ANALYZE the session plans otherwise (DESCRIBE <table>)")
					}
					if _, _, err := parser.New().ParseSQL(c.Query); err != nil && c.Error != "" {
						t.Skip("a syntax error: the session reports it as MariaDB words it")
					}
					got = planCase(t, snap, c)
				}
				want := plantest.Case{Plan: c.Plan, Error: c.Error, Explain: c.Explain}
				if !reflect.DeepEqual(got, want) {
					g, _ := json.Marshal(got)
					w, _ := json.Marshal(want)
					t.Errorf("%q\n got: %s\nwant: %s", c.Query, g, w)
				}
			})
		}
	}
}

// goldenCases reads the cases of a fixture file.
func goldenCases(t *testing.T, file string) []plantest.Case {
	t.Helper()
	data, err := os.ReadFile(plantest.Fixture(file))
	if err != nil {
		t.Fatal(err)
	}
	var cases []plantest.Case
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&cases); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return cases
}

// explainHead reports whether query is an EXPLAIN or ANALYZE of a statement.
func explainHead(query string) bool {
	head := strings.ToUpper(strings.Fields(strings.TrimSpace(query) + " x")[0])
	return head == "EXPLAIN" || head == "ANALYZE" || head == "DESCRIBE" || head == "DESC"
}

// planCase plans c as the session would, with the planner alone, and returns what the
// fixture compares: the plan's description, the error, or a LOCK TABLES' targets.
func planCase(t *testing.T, snap *rules.Snapshot, c plantest.Case) plantest.Case {
	t.Helper()
	user := c.User
	if user == "" {
		user = "app"
	}
	pl := &Planner{DB: c.DB, User: user, ConnID: 42, LastInsertID: c.LastInsertID, RestoreFlags: DefaultRestoreFlags}
	stmts, _, err := parser.New().ParseSQL(c.Query)
	if err != nil {
		t.Fatalf("%q: %v", c.Query, err)
	}
	if len(stmts) != 1 {
		t.Fatalf("%d statements in %q", len(stmts), c.Query)
	}
	var got plantest.Case
	if lock, ok := stmts[0].(*ast.LockTablesStmt); ok {
		targets, fanned, err := pl.PlanLock(snap, lock)
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
	var p plan.Primitive
	if c.Params != nil {
		p, err = pl.Plan(snap, stmts[0], c.Query, longlongParams(c.Params))
	} else {
		p, err = pl.PlanStatement(snap, stmts[0], c.Query)
	}
	if err != nil {
		got.Error = err.Error()
		return got
	}
	d := p.Describe()
	got.Plan = &d
	return got
}

// explainCase plans the EXPLAIN / ANALYZE r of case c as the session would and returns what
// the fixture compares: the targets of a statement on several shards, else the route of the
// EXPLAIN, or the error.
func explainCase(snap *rules.Snapshot, c plantest.Case, r ExplainReq) plantest.Case {
	user := c.User
	if user == "" {
		user = "app"
	}
	pl := &Planner{DB: c.DB, User: user, ConnID: 42, LastInsertID: c.LastInsertID, RestoreFlags: DefaultRestoreFlags}
	var got plantest.Case
	ep, err := pl.PlanExplain(snap, r)
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

// longlongParams are vs as BIGINT parameters of the binary protocol.
func longlongParams(vs []int64) []wire.Param {
	out := make([]wire.Param, len(vs))
	for i, v := range vs {
		out[i] = wire.Param{Type: mysql.MYSQL_TYPE_LONGLONG, Value: binary.LittleEndian.AppendUint64(nil, uint64(v))}
	}
	return out
}
