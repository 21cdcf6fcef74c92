package router

import (
	"context"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// preparedShape is one shape of prepared statement, the values its executions bind, and how
// many times each of its executions may parse once it has run with those values before (a
// scatter SELECT plans its template at its first execution that goes to several shards).
type preparedShape struct {
	name  string
	sql   string
	param func(v int64, i int) wire.Param // execution v's i-th value (v in 1..8)
	want  int                             // parses of 8 executions (0: planned once)
}

// sameKey binds v to every parameter: one key per execution, cycling over the slots.
func sameKey(v int64, _ int) wire.Param { return intParam(v) }

// spreadKeys binds keys 1000 apart: an execution's keys fall on several shards.
func spreadKeys(v int64, i int) wire.Param { return intParam(v + int64(i)*1000) }

// keyThenSmall binds the key first, then small values (a LIMIT, a threshold).
func keyThenSmall(v int64, i int) wire.Param {
	if i == 0 {
		return intParam(v)
	}
	return intParam(int64(i) + 1)
}

// preparedShapes enumerates the shapes of prepared statements the router routes, each with
// the parses an EXECUTE costs (0: planned once; the comment says why not where it is not).
var preparedShapes = []preparedShape{
	{name: "point select by ? key", sql: "SELECT * FROM orders WHERE user_id = ?", param: sameKey},
	{name: "point select, two keys agree", sql: "SELECT * FROM orders WHERE user_id = ? AND note <> ?", param: keyThenSmall},
	{name: "IN (?,?) over shards", sql: "SELECT * FROM orders WHERE user_id IN (?, ?)", param: spreadKeys},
	{name: "range scatter", sql: "SELECT * FROM orders WHERE amount > ?", param: sameKey},
	{name: "range scheme BETWEEN", sql: "SELECT * FROM events WHERE id BETWEEN ? AND ?", param: func(v int64, i int) wire.Param { return intParam(v + int64(i)*300) }},
	{name: "scatter without parameters", sql: "SELECT * FROM orders WHERE amount > 3", param: sameKey},
	{name: "scatter LIMIT ?", sql: "SELECT * FROM orders WHERE amount > ? LIMIT ?", param: keyThenSmall},
	{name: "scatter LIMIT ?, ?", sql: "SELECT * FROM orders WHERE amount > ? LIMIT ?, ?", param: keyThenSmall},
	{name: "point select LIMIT ?", sql: "SELECT * FROM orders WHERE user_id = ? LIMIT ?", param: keyThenSmall},
	{name: "scatter HAVING ?", sql: "SELECT user_id, COUNT(*) FROM orders GROUP BY user_id HAVING COUNT(*) > ?", param: sameKey},
	{name: "scatter ? in select list", sql: "SELECT ?, id FROM orders", param: sameKey},
	{name: "table per slot, point", sql: "SELECT owner FROM accounts WHERE account_id = ?", param: sameKey},
	{name: "table per slot, IN over slots", sql: "SELECT owner FROM accounts WHERE account_id IN (?, ?)", param: func(v int64, i int) wire.Param { return intParam(v + int64(i)) }},
	{name: "table per slot, scatter", sql: "SELECT * FROM accounts WHERE owner = ?", param: sameKey},
	{name: "broadcast table", sql: "SELECT * FROM currencies WHERE code = ?", param: sameKey},
	{name: "single table", sql: "SELECT * FROM settings WHERE name = ?", param: sameKey},
	{name: "INSERT by ? key", sql: "INSERT INTO orders (user_id, note) VALUES (?, ?)", param: keyThenSmall},
	{name: "INSERT table per slot", sql: "INSERT INTO accounts (account_id, owner) VALUES (?, ?)", param: keyThenSmall},
	{name: "UPDATE by ? key", sql: "UPDATE orders SET note = ? WHERE user_id = ?", param: func(v int64, i int) wire.Param { return intParam(v * int64(i)) }},
	{name: "DELETE by ? key", sql: "DELETE FROM ledger WHERE account_id = ?", param: sameKey},
	{name: "multi-shard UPDATE", sql: "UPDATE orders SET note = ? WHERE user_id IN (?, ?)", param: spreadKeys},
	{name: "multi-shard DELETE", sql: "DELETE FROM orders WHERE amount > ?", param: sameKey},
	{name: "multi-row INSERT split", sql: "INSERT INTO orders (user_id, note) VALUES (?, 'a'), (?, 'b')", param: spreadKeys},
	{name: "broadcast UPDATE", sql: "UPDATE currencies SET rate = ? WHERE code = ?", param: sameKey},
	{name: "broadcast UPDATE with LAST_INSERT_ID()", sql: "UPDATE currencies SET rate = ? WHERE id = LAST_INSERT_ID()", param: sameKey},
	{name: "multi-shard DELETE with LAST_INSERT_ID()", sql: "DELETE FROM orders WHERE amount > ? AND id <> LAST_INSERT_ID()", param: sameKey},
	{name: "HAVING ? over merged groups", sql: "SELECT COUNT(*) FROM orders HAVING COUNT(*) > ?", param: sameKey},                                  // no template (the merge reads the value): its kept tree (keptTree)
	{name: "LIMIT ? over tables per slot", sql: "SELECT * FROM accounts WHERE owner = ? LIMIT ?", param: sameKey},                                  // likewise
	{name: "session value in a scatter select list", sql: "SELECT LAST_INSERT_ID(), id FROM orders WHERE amount > ?", param: sameKey},              // likewise
	{name: "subquery over shards", sql: "SELECT * FROM orders WHERE user_id IN (SELECT user_id FROM order_items WHERE price > ?)", param: sameKey}, // parsed once, at its first execution (keptTree)
	{name: "subquery pinned to the key", sql: "SELECT * FROM orders WHERE user_id = ? AND id IN (SELECT id FROM order_items WHERE user_id = ?)", param: sameKey},
	{name: "LAST_INSERT_ID() point", sql: "SELECT * FROM orders WHERE user_id = ? AND id = LAST_INSERT_ID()", param: sameKey},
	{name: "LAST_INSERT_ID() scatter", sql: "SELECT * FROM orders WHERE amount > ? AND id <> LAST_INSERT_ID()", param: sameKey},
	{name: "CONNECTION_ID(), DATABASE() point", sql: "SELECT CONNECTION_ID(), DATABASE(), o.id FROM orders o WHERE o.user_id = ?", param: sameKey},
	{name: "LAST_INSERT_ID() single table", sql: "SELECT * FROM settings WHERE id = LAST_INSERT_ID()", param: sameKey},
}

// TestPreparedShapesParses: each shape of prepared statement parses as many times per
// EXECUTE as preparedShapes says.
func TestPreparedShapesParses(t *testing.T) {
	for _, c := range preparedShapes {
		t.Run(c.name, func(t *testing.T) {
			first, n, err := executionParses(t, c)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d parses in the first 8 executions, then %.2f per EXECUTE", c.sql, first, float64(n)/8)
			if n != c.want {
				t.Errorf("8 executions parsed %d times, want %d", n, c.want)
			}
		})
	}
}

// executionParses prepares c's statement, executes it with 8 sets of values and then with
// the same 8 again, and returns the parses of each round.
func executionParses(t *testing.T, c preparedShape) (first, again int, err error) {
	t.Helper()
	be := newFakeBackend()
	s := fakeSession(t, shardedRouter(t, be), "app", 1)
	s.db = "shop"
	ctx := context.Background()
	st, err := s.Prepare(ctx, c.sql)
	if err != nil {
		return 0, 0, err
	}
	var w clientRecorder
	start := s.parses
	for v := range 16 {
		if v == 8 {
			first = s.parses - start
		}
		params := make([]wire.Param, st.NumParams())
		for i := range params {
			params[i] = c.param(int64(v%8)+1, i)
		}
		if err := s.Execute(ctx, st, params, &w); err != nil {
			return 0, 0, err
		}
	}
	return first, s.parses - start - first, nil
}

// TestPreparedShapesAfterReload: after a reload each shape is planned once more, at its
// first execution under the new rules, and its executions after that parse as many times as
// before the reload.
func TestPreparedShapesAfterReload(t *testing.T) {
	for _, c := range preparedShapes {
		t.Run(c.name, func(t *testing.T) {
			be := newFakeBackend()
			r := shardedRouter(t, be)
			s := fakeSession(t, r, "app", 1)
			s.db = "shop"
			ctx := context.Background()
			st, err := s.Prepare(ctx, c.sql)
			if err != nil {
				t.Fatal(err)
			}
			run := func() int {
				var w clientRecorder
				before := s.parses
				for v := range 8 {
					params := make([]wire.Param, st.NumParams())
					for i := range params {
						params[i] = c.param(int64(v)+1, i)
					}
					if err := s.Execute(ctx, st, params, &w); err != nil {
						t.Fatal(err)
					}
				}
				return s.parses - before
			}
			run()
			snap, err := rules.Build(plantest.ShardedConfig())
			if err != nil {
				t.Fatal(err)
			}
			r.rules.Swap(snap)
			first := run()
			if n := run(); n != c.want {
				t.Errorf("8 executions after a reload (and 8 that planned %d times) parsed %d times, want %d", first, n, c.want)
			}
		})
	}
}

// TestPreparedRefusedAfterReload: a prepared statement the new rules refuse is planned in
// full at each execution (one parse), which reports why, and is not re-planned twice.
func TestPreparedRefusedAfterReload(t *testing.T) {
	be := newFakeBackend()
	r := shardedRouter(t, be)
	s := fakeSession(t, r, "app", 1)
	s.db = "shop"
	ctx := context.Background()
	st, err := s.Prepare(ctx, "SELECT o.id FROM orders o JOIN order_items i ON i.user_id = o.user_id WHERE o.amount > ?")
	if err != nil {
		t.Fatal(err)
	}
	var w clientRecorder
	if err := s.Execute(ctx, st, []wire.Param{intParam(1)}, &w); err != nil {
		t.Fatal(err)
	}
	cfg := plantest.ShardedConfig()
	cfg.Databases[0].Tables[1].Scheme = "by_account" // order_items: no longer joined on one scheme
	snap, err := rules.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.rules.Swap(snap)
	before := s.parses
	for i := range 3 {
		if err := s.Execute(ctx, st, []wire.Param{intParam(1)}, &w); err == nil || !strings.Contains(err.Error(), "different schemes") {
			t.Fatalf("execution %d after the reload: %v, want the join refused", i, err)
		}
	}
	if n := s.parses - before; n != 4 {
		t.Errorf("3 refused executions after the reload parsed %d times, want 4 (the new plan, then each execution's)", n)
	}
}
