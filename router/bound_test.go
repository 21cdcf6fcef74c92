package router

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// TestPreparedExecuteParsesNothing: a prepared statement is parsed and planned once, at
// PREPARE; each EXECUTE binds its parameters and resolves the route (including a route that
// depends on a ? shard key, and a table per slot) without parsing again.
func TestPreparedExecuteParsesNothing(t *testing.T) {
	for _, sql := range []string{
		"SELECT * FROM orders WHERE user_id = ?",
		"SELECT owner FROM accounts WHERE account_id = ? AND owner <> 'x'",
		"UPDATE accounts SET owner = ? WHERE account_id = ?",
		"SELECT * FROM settings WHERE name = ?",
		"SELECT * FROM orders WHERE user_id = ? AND id = LAST_INSERT_ID()",
	} {
		t.Run(sql, func(t *testing.T) {
			checkExecutionsParse(t, sql, 0, func(v int64, _ int) wire.Param { return intParam(v) })
		})
	}
}

// checkExecutionsParse prepares sql, executes it first warm times then 8 times more with
// the values param gives (execution v, parameter i), and checks that those 8 parse nothing.
func checkExecutionsParse(t *testing.T, sql string, warm int64, param func(v int64, i int) wire.Param) {
	t.Helper()
	be := newFakeBackend()
	s := fakeSession(t, shardedRouter(t, be), "app", 1)
	s.db = "shop"
	ctx := context.Background()
	st, err := s.Prepare(ctx, sql)
	if err != nil {
		t.Fatal(err)
	}
	var w clientRecorder
	before := s.parses
	for v := range warm + 8 {
		if v == warm {
			before = s.parses
		}
		params := make([]wire.Param, st.NumParams())
		for i := range params {
			params[i] = param(v, i)
		}
		if err := s.Execute(ctx, st, params, &w); err != nil {
			t.Fatalf("execute %d: %v", v, err)
		}
	}
	if n := s.parses - before; n != 0 {
		t.Errorf("8 executions parsed %d times, want 0", n)
	}
}

// TestBoundRouteMatchesPlanning: one prepared statement's route, resolved again and again
// with other parameters (its tree renamed each time), sends the same SQL to the same shard
// as planning the statement afresh with those parameters, in every case it resolves.
func TestBoundRouteMatchesPlanning(t *testing.T) {
	stmts := []string{
		"SELECT * FROM orders WHERE user_id = ?",
		"SELECT owner FROM accounts WHERE account_id = ? AND owner <> ?",
		"SELECT a.owner, COUNT(*) FROM shop.accounts a WHERE a.account_id = ? GROUP BY a.owner",
		"SELECT * FROM accounts JOIN ledger ON ledger.account_id = accounts.account_id WHERE accounts.account_id = ? AND ledger.account_id = ?",
		"SELECT * FROM orders WHERE user_id IN (?, ?)",
		"SELECT * FROM events WHERE id = ?",
		"INSERT INTO accounts (account_id, owner) VALUES (?, ?)",
		"INSERT INTO accounts (account_id, owner) VALUES (?, 'a'), (?, 'b')",
		"UPDATE accounts SET owner = ? WHERE account_id = ?",
		"DELETE FROM ledger WHERE account_id = ?",
		"SELECT CONNECTION_ID(), o.* FROM orders o WHERE o.user_id = ?",
		"SELECT * FROM orders WHERE user_id = ? AND id = LAST_INSERT_ID()",
		"SELECT DATABASE(), @@last_insert_id, @@max_execution_time, @@max_statement_time FROM accounts WHERE account_id = ?",
		"UPDATE ledger SET amount = LAST_INSERT_ID() WHERE account_id = ?",
		"SELECT * FROM settings WHERE id = LAST_INSERT_ID()",
		"SELECT * FROM orders WHERE user_id = ? AND id IN (SELECT id FROM order_items WHERE user_id = ?)",
		"SELECT * FROM accounts WHERE account_id = ? AND EXISTS (SELECT 1 FROM ledger l WHERE l.account_id = ? AND l.amount > ?)",
		"SELECT (SELECT MAX(amount) FROM ledger WHERE account_id = ?) AS m, owner FROM accounts WHERE account_id = ?",
		"SELECT * FROM currencies WHERE code IN (SELECT note FROM orders WHERE user_id = ?)",
		"UPDATE accounts SET owner = ? WHERE account_id = ? AND owner IN (SELECT owner FROM (SELECT owner FROM ledger WHERE account_id = ?) t)",
		"DELETE FROM orders WHERE user_id = ? AND id IN (SELECT id FROM (SELECT id FROM order_items WHERE user_id = ?) t)",
		"SELECT DATABASE(), c.* FROM shop.currencies c WHERE c.code = ? AND c.id <> @@last_insert_id",
		"UPDATE settings SET v = LAST_INSERT_ID() WHERE name = ?",
		"SELECT @@max_execution_time, name FROM settings WHERE name = ?",
	}
	for _, sql := range stmts {
		t.Run(sql, func(t *testing.T) {
			s, snap, node, prep := describedForTest(t, sql)
			if boundOf(prep) == nil {
				t.Fatal("prepared without a bound route")
			}
			resolved := 0
			for v := range int64(16) {
				// Equal keys, then mixed ones; a session value the statement may embed.
				params := paramsFor(node, func(i int64) int64 { return (v + i*(v%2)) % 9 })
				s.ids.last = uint64(v * 1000)
				s.vars.execTime, s.vars.execTimeSet = time.Duration(v)*time.Second, v%3 == 0
				shard, got, cols, ok := boundOf(prep).Resolve(execViewOf(s), snap, params)
				fresh, err := s.parseOne(sql)
				if err != nil {
					t.Fatal(err)
				}
				want, err := s.plan(snap, fresh, sql, params)
				if !ok {
					continue
				}
				resolved++
				wr, single := plan.RouteOf(want)
				if err != nil || !single {
					t.Fatalf("params %v: bound route %s %q, planning: %v (planned as %T, not one route)", params, shard.Name, got, err, want)
				}
				if shard != wr.Shard || got != wr.SQL || !reflect.DeepEqual(cols, wr.Columns) {
					t.Errorf("params %v: bound route %s %q, planning %s %q", params, shard.Name, got, wr.Shard.Name, wr.SQL)
				}
			}
			if resolved < 8 {
				t.Errorf("%d of 16 executions resolved by the bound route", resolved)
			}
		})
	}
}

// TestBoundRouteAfterReload: after a reload, a prepared statement is planned once more (one
// parse) and bound again: its executions parse nothing more and follow the new rules.
func TestBoundRouteAfterReload(t *testing.T) {
	be := newFakeBackend()
	r := shardedRouter(t, be)
	s := fakeSession(t, r, "app", 1)
	s.db = "shop"
	ctx := context.Background()
	st, err := s.Prepare(ctx, "SELECT owner FROM accounts WHERE account_id = ?")
	if err != nil {
		t.Fatal(err)
	}
	var w clientRecorder
	if err := s.Execute(ctx, st, []wire.Param{intParam(5)}, &w); err != nil {
		t.Fatal(err)
	}
	cfg := plantest.ShardedConfig()
	cfg.Schemes[1].Shards = []string{"s3", "s2", "s1", "s0"} // by_account: slots 4-5 now on s1
	snap, err := rules.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.rules.Swap(snap)
	be.takeLog()
	before := s.parses
	for range 3 {
		if err := s.Execute(ctx, st, []wire.Param{intParam(5)}, &w); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.parses - before; n != 1 {
		t.Errorf("3 executions after a reload parsed %d times, want 1 (the new plan)", n)
	}
	log := be.takeLog()
	if !slices.ContainsFunc(log, func(l string) bool {
		return strings.HasPrefix(l, "s1#") && strings.Contains(l, "PREPARE SELECT `owner` FROM `accounts_0005`")
	}) {
		t.Errorf("after the reload, slot 5 was not prepared on s1: %q", log)
	}
	for _, l := range log {
		if strings.Contains(l, "PREPARE") && !strings.HasPrefix(l, "s1#") {
			t.Errorf("after the reload, slot 5 was prepared elsewhere than s1: %q", l)
		}
	}
}

// TestExplainBoundRoute: EXPLAIN SHARDS of a statement routed by a ? shard key shows the
// route with its bind variables (the slot's shard, table and database), not slot 0's.
func TestExplainBoundRoute(t *testing.T) {
	s, _ := newTestSession(t, plantest.ShardedConfig(), "app", "shop")
	for _, c := range []struct{ sql, want string }{
		{"SELECT owner FROM shop.accounts WHERE account_id = ?", "SELECT `owner` FROM `{slot's database}`.`accounts_{slot}` AS `accounts` WHERE `account_id`=?"},
		{"SELECT * FROM orders WHERE user_id = ?", "SELECT * FROM orders WHERE user_id = ?"},
	} {
		steps, err := s.Explain(c.sql)
		if err != nil {
			t.Fatal(err)
		}
		want := []ExplainStep{{Step: "route", Shard: "{shard of the bound key's slot}", Detail: c.want}}
		if !reflect.DeepEqual(steps, want) {
			t.Errorf("EXPLAIN SHARDS %s:\n got %q\nwant %q", c.sql, steps, want)
		}
	}
}

// TestBoundWritesMatchPlanning: a prepared multi-shard write placed without parsing (its
// branches kept from PREPARE and handed the values, or split on the statement's tree with
// its prepare-time analysis) has the branches, statements and parameters that planning the
// statement afresh with the values gives, in every case it resolves.
func TestBoundWritesMatchPlanning(t *testing.T) {
	stmts := []string{
		"UPDATE orders SET note = ? WHERE user_id IN (?, ?)",
		"UPDATE accounts SET owner = ? WHERE account_id IN (?, ?, ?)",
		"UPDATE shop.accounts SET owner = ? WHERE account_id IN (?, ?)",
		"DELETE FROM ledger WHERE account_id IN (?, ?)",
		"DELETE FROM orders WHERE amount > ?",
		"DELETE FROM ledger WHERE amount > ?",
		"UPDATE orders SET note = ? WHERE user_id IN (1, 2)",
		"INSERT INTO orders (user_id, note) VALUES (?, 'a'), (?, 'b')",
		"INSERT INTO accounts (account_id, owner) VALUES (?, ?), (?, ?), (?, ?)",
		"INSERT INTO orders (user_id, note) VALUES (?, ?), (?, ?) ON DUPLICATE KEY UPDATE note = ?",
		"INSERT INTO orders (user_id, note) VALUES (1, ?), (2, ?)",
		"UPDATE currencies SET rate = ? WHERE code = ?",
		"DELETE FROM shop.currencies WHERE code = ?",
		"INSERT INTO currencies (code, rate) VALUES (?, ?)",
		"UPDATE ledger SET amount = LAST_INSERT_ID() WHERE account_id IN (?, ?)",
		"UPDATE currencies SET rate = ? WHERE id = LAST_INSERT_ID()",
		"DELETE FROM orders WHERE amount > ? AND id <> LAST_INSERT_ID()",
		"UPDATE ledger SET amount = ? WHERE note = DATABASE() AND amount < @@max_execution_time",
		"INSERT INTO orders (user_id, note) VALUES (1, LAST_INSERT_ID()), (2, ?)",
	}
	for _, sql := range stmts {
		t.Run(sql, func(t *testing.T) {
			s, snap, node, prep := describedForTest(t, sql)
			st := &Stmt{text: sql}
			st.setPlan(s, snap, prep) // its kept branches, or its route bound on the tree
			if st.writes == nil && st.bound == nil {
				t.Fatal("prepared without a bound route or kept branches")
			}
			resolved := 0
			for v := range int64(16) {
				params := paramsFor(node, func(i int64) int64 { return v + i*(v%3+1) }) // keys of one slot and of several
				s.ids.last = uint64(v * 1000)
				got, ok := st.writes.Resolve(execViewOf(s), snap, params)
				if !ok {
					got, ok = st.bound.ResolveWrite(execViewOf(s), snap, params)
				}
				fresh, err := s.parseOne(sql)
				if err != nil {
					t.Fatal(err)
				}
				p, err := s.plan(snap, fresh, sql, params)
				want, multi := p.(*plan.MultiWrite)
				if !ok {
					if err == nil && multi {
						t.Errorf("params %v: planning gives a multi-shard write the prepared statement did not place", params)
					}
					continue
				}
				resolved++
				if err != nil || !multi {
					t.Fatalf("params %v: resolved %q, planning: %v (%T)", params, describeSteps(got), err, p)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("params %v:\nresolved %q\nplanning %q", params, describeSteps(got), describeSteps(want))
				}
			}
			if resolved < 4 {
				t.Errorf("%d of 16 executions resolved without parsing", resolved)
			}
		})
	}
}

// describedForTest is sql planned as PREPARE plans it, in a session of user app in
// database shop over plantest.ShardedConfig, with its tree.
func describedForTest(t *testing.T, sql string) (*Session, *rules.Snapshot, ast.StmtNode, plan.Primitive) {
	t.Helper()
	s, snap := newTestSession(t, plantest.ShardedConfig(), "app", "shop")
	node, err := s.parseOne(sql)
	if err != nil {
		t.Fatal(err)
	}
	prep, err := s.describe(snap, node, sql)
	if err != nil {
		t.Fatal(err)
	}
	return s, snap, node, prep
}

// paramsFor binds value(i) to each ? i of node, as BIGINT.
func paramsFor(node ast.Node, value func(i int64) int64) []wire.Param {
	var ms planner.MarkerCollector
	node.Accept(&ms)
	params := make([]wire.Param, len(ms))
	for i := range params {
		params[i] = intParam(value(int64(i)))
	}
	return params
}

// TestBoundRouteUnderLockTables: while the session holds LOCK TABLES on sharded tables,
// slot tables are locked under their own names and statements name them bare; a statement
// prepared before the LOCK is then placed as planning it under the lock places it, not
// with the alias its bound route gives it otherwise.
func TestBoundRouteUnderLockTables(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, shardedRouter(t, be), "app", 1)
	s.db = "shop"
	ctx := context.Background()
	st, err := s.Prepare(ctx, "SELECT owner FROM accounts WHERE account_id = ?")
	if err != nil {
		t.Fatal(err)
	}
	var w clientRecorder
	exec(t, s, "LOCK TABLES accounts READ", &w)
	be.takeLog()
	if err := s.Execute(ctx, st, []wire.Param{intParam(5)}, &w); err != nil {
		t.Fatal(err)
	}
	const want = ": PREPARE SELECT `owner` FROM `accounts_0005` WHERE `account_id`=?"
	if log := be.takeLog(); !slices.ContainsFunc(log, func(l string) bool { return strings.HasPrefix(l, "s2#") && strings.HasSuffix(l, want) }) {
		t.Errorf("under LOCK TABLES, slot 5 was not prepared bare on s2: %q", log)
	}
}
