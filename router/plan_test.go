package router

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

var update = flag.Bool("update", false, "rewrite the expectations in testdata/*.json with the planner's output")

// planCase is one golden case: a statement planned for a session (database, user, last
// insert id) and the plan expected (the primitive's description: what each shard is sent,
// the merge or commit, the statement's flags) or the error.
type planCase struct {
	Comment      string  `json:"comment"`
	Query        string  `json:"query"`
	DB           string  `json:"db,omitempty"`
	User         string  `json:"user,omitempty"` // default "app"
	LastInsertID uint64  `json:"last_insert_id,omitempty"`
	Params       []int64 `json:"params,omitempty"` // values bound to ? (as BIGINT) of a prepared statement
	// Bound: the statement prepared without params and executed with them is routed by the
	// route planned at prepare time (bind variables filled in, no parse, no plan), to the
	// same shard with the same SQL as planning it with its params.
	Bound bool `json:"bound,omitempty"`

	// Plan is the plan's description (plan.Primitive.Describe); for an EXPLAIN / ANALYZE
	// of a statement on one shard, the route of the EXPLAIN.
	Plan  *plan.Description `json:"plan,omitempty"`
	Error string            `json:"error,omitempty"`
	// Explain lists what each shard is asked for an EXPLAIN / ANALYZE whose statement runs
	// on several shards ("shard: SQL"; the answers are labelled by shard), and for a LOCK
	// TABLES on sharded or broadcast tables, in locking order.
	Explain []string `json:"explain,omitempty"`
}

// passthroughConfig has three logical databases, each on its own shard (no sharded
// tables): shop on shard s_shop (physical shop_0), blog on s_blog (blog_p), crm on s_crm
// (physical crm: no renaming needed). User app may use all, blogger only blog, shopper
// shop and crm.
func passthroughConfig() *rules.Config {
	return &rules.Config{
		Users: []rules.UserConfig{
			{Name: "app", PasswordHash: "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9"},
			{Name: "blogger", PasswordHash: "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9", Databases: []string{"blog"}},
			{Name: "shopper", PasswordHash: "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9", Databases: []string{"shop", "crm"}},
		},
		Backends: []rules.BackendConfig{
			{Name: "b1", Addr: "10.0.0.1:3306", User: "proxy", Password: "pw"},
			{Name: "b2", Addr: "10.0.0.2:3306", User: "proxy", Password: "pw"},
			{Name: "b3", Addr: "10.0.0.3:3306", User: "proxy", Password: "pw"},
		},
		Shards: []rules.ShardConfig{
			{Name: "s_shop", Primary: "b1", Database: "shop_0"},
			{Name: "s_blog", Primary: "b2", Database: "blog_p"},
			{Name: "s_crm", Primary: "b3", Database: "crm"},
		},
		Databases: []rules.DatabaseConfig{
			{Name: "shop", DefaultShard: "s_shop"},
			{Name: "blog", DefaultShard: "s_blog"},
			{Name: "crm", DefaultShard: "s_crm"},
		},
	}
}

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
	if r, ok := s.explainText(c.Query); ok {
		ep, err := s.planExplain(snap, r)
		switch {
		case err != nil:
			got.Error = err.Error()
		case ep.labelled:
			for _, t := range ep.targets {
				got.Explain = append(got.Explain, t.shard.Name+": "+t.sql)
			}
		default:
			d := (&plan.Route{Attrs: *ep.p.Attributes(), Shard: ep.targets[0].shard, SQL: ep.targets[0].sql}).Describe()
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

// golden runs every case of testdata/file, one subtest each named by its comment: run's
// outcome must equal the case; with -update the outcomes are written back to the file.
// name gives a case's comment and query, show how a case is printed in a failure.
func golden[C any](t *testing.T, file string, name func(C) (comment, query string), run func(*testing.T, C) C, show func(C) string) {
	path := filepath.Join("testdata", file)
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
	runGolden(t, "plan_passthrough.json", passthroughConfig)
}

// shardedConfig is one logical database, shop, over four shards (physical databases
// shop_s0..shop_s3) with the demo's kinds of tables: orders and order_items hashed by
// user_id over 4 slots (one per shard); accounts and ledger by account_id mod 8 with a
// physical table per slot (slots 0-1 on s0, 2-3 on s1, 4-5 on s2, 6-7 on s3); events by
// ranges of id (below 100 on s0, 100-199 on s1, from 200 on s2; UPDATE/DELETE without WHERE
// forbidden); visits by month of
// visited_on (before 2026 on s0, first half of 2026 on s1, from July 2026 on s2); currencies broadcast;
// settings and everything unlisted single on the default shard s0.
func shardedConfig() *rules.Config {
	pw := "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9"
	c := &rules.Config{
		Users: []rules.UserConfig{{Name: "app", PasswordHash: pw}},
		Schemes: []rules.SchemeConfig{
			{Name: "by_user", Function: "hash", Slots: 4, Shards: []string{"s0", "s1", "s2", "s3"}},
			{Name: "by_account", Function: "mod", Slots: 8, Shards: []string{"s0", "s1", "s2", "s3"}},
			{Name: "by_id", Function: "range", Ranges: []rules.RangeConfig{
				{To: "100", Shard: "s0"}, {From: "100", To: "200", Shard: "s1"}, {From: "200", Shard: "s2"},
			}},
			{Name: "by_month", Function: "date", Unit: "month", Ranges: []rules.RangeConfig{
				{To: "2026-01-01", Shard: "s0"}, {From: "2026-01-01", To: "2026-07-01", Shard: "s1"}, {From: "2026-07-01", Shard: "s2"},
			}},
		},
		Databases: []rules.DatabaseConfig{{
			Name: "shop", DefaultShard: "s0",
			Tables: []rules.TableConfig{
				{Name: "orders", Kind: rules.KindSharded, Key: "user_id", Scheme: "by_user"},
				{Name: "order_items", Kind: rules.KindSharded, Key: "user_id", Scheme: "by_user"},
				{Name: "accounts", Kind: rules.KindSharded, Key: "account_id", Scheme: "by_account", TablePerSlot: true},
				{Name: "ledger", Kind: rules.KindSharded, Key: "account_id", Scheme: "by_account", TablePerSlot: true},
				{Name: "events", Kind: rules.KindSharded, Key: "id", Scheme: "by_id", FullTableWrites: "forbid"},
				{Name: "visits", Kind: rules.KindSharded, Key: "visited_on", Scheme: "by_month"},
				{Name: "currencies", Kind: rules.KindBroadcast},
				{Name: "settings", Kind: rules.KindSingle},
			},
		}},
	}
	for i := range 4 {
		n := string(rune('0' + i))
		c.Backends = append(c.Backends, rules.BackendConfig{Name: "b" + n, Addr: "10.0.0." + n + ":3306", User: "proxy", Password: "pw"})
		c.Shards = append(c.Shards, rules.ShardConfig{Name: "s" + n, Primary: "b" + n, Database: "shop_s" + n})
	}
	return c
}

func TestPlanSharded(t *testing.T) {
	runGolden(t, "plan_sharded.json", shardedConfig)
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
