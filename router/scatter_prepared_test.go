package router

import (
	"context"
	"encoding/binary"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// scatterPreparedStmts are prepared SELECTs whose parameters send them to several shards.
var scatterPreparedStmts = []string{
	"SELECT * FROM orders WHERE amount > ?",
	"SELECT id, amount FROM orders WHERE amount > ? ORDER BY amount DESC, id LIMIT 5",
	"SELECT * FROM orders WHERE user_id IN (?, ?)",
	"SELECT * FROM orders WHERE user_id IN (?, ?, ?) AND note <> ?",
	"SELECT user_id, COUNT(*), SUM(amount), AVG(amount) FROM orders WHERE note = ? OR note LIKE ? GROUP BY user_id HAVING COUNT(*) > 1 ORDER BY user_id",
	"SELECT o.user_id, i.sku FROM orders o JOIN order_items i ON i.user_id = o.user_id WHERE o.created >= ? AND i.price BETWEEN ? AND ?",
	"SELECT DISTINCT note FROM orders WHERE amount <> ? ORDER BY note",
	"SELECT MAX(amount), MIN(created) FROM shop.orders WHERE user_id <> ?",
	"SELECT * FROM events WHERE id BETWEEN ? AND ?",
	"SELECT * FROM events WHERE id >= ? ORDER BY id LIMIT 3",
	"SELECT COUNT(*) FROM visits WHERE visited_on >= ? AND note = CONCAT(?, 'x')",
	"SELECT * FROM orders WHERE note = -? OR amount = ? * -1",
	"SELECT * FROM orders WHERE amount > ? LIMIT ?",
	"SELECT id, amount FROM orders WHERE amount > ? ORDER BY amount DESC, id LIMIT ?, ?",
	"SELECT user_id, COUNT(*) FROM orders WHERE note <> ? GROUP BY user_id ORDER BY user_id LIMIT ?",
	"SELECT note, COUNT(*) FROM orders WHERE amount > ? GROUP BY note ORDER BY note LIMIT ?",
	"SELECT DISTINCT note FROM orders WHERE amount <> ? ORDER BY note LIMIT ? OFFSET ?",
	"SELECT * FROM orders WHERE amount > ? LIMIT 2, ?",
	"SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?, 3",
	"SELECT user_id, COUNT(*) FROM orders GROUP BY user_id HAVING COUNT(*) > ?",
	"SELECT user_id, COUNT(*) FROM orders WHERE amount > ? GROUP BY user_id HAVING COUNT(*) > ? AND SUM(amount) < ? ORDER BY user_id",
	"SELECT ?, id FROM orders",
	"SELECT id, ? FROM orders WHERE amount > ? ORDER BY id",
	"SELECT ? AS tag, user_id FROM orders WHERE note <> ? LIMIT ?",
	"SELECT * FROM orders WHERE amount > ? AND id <> LAST_INSERT_ID()",
	"SELECT * FROM orders WHERE (user_id = LAST_INSERT_ID() OR user_id IN (?, ?)) AND note <> DATABASE() LIMIT ?",
	"SELECT * FROM events WHERE id BETWEEN ? AND LAST_INSERT_ID() + ?",
	"SELECT * FROM accounts WHERE owner = ?",
	"SELECT owner FROM accounts WHERE account_id IN (?, ?, ?)",
	"SELECT a.owner, l.amount FROM accounts a JOIN ledger l ON l.account_id = a.account_id WHERE l.amount > ? AND a.account_id IN (?, ?)",
	"SELECT owner, COUNT(*) FROM accounts WHERE balance > ? GROUP BY owner ORDER BY owner",
	"SELECT * FROM accounts WHERE owner <> ? ORDER BY account_id LIMIT 5",
	"SELECT SQL_NO_CACHE owner FROM shop.accounts WHERE account_id <> ? AND owner = DATABASE()",
}

// scatterParamValues are values of every kind a client binds: they must reach the shards
// written exactly as binding them into the statement writes them.
func scatterParamValues() []wire.Param {
	str := func(typ byte, s string) wire.Param {
		return wire.Param{Type: typ, Value: wire.AppendLenencString(nil, s)}
	}
	date := func(y uint16, mo, d, h, mi, sec byte, us uint32) wire.Param {
		b := []byte{11}
		b = binary.LittleEndian.AppendUint16(b, y)
		b = append(b, mo, d, h, mi, sec)
		b = binary.LittleEndian.AppendUint32(b, us)
		return wire.Param{Type: mysql.MYSQL_TYPE_DATETIME, Value: b}
	}
	return []wire.Param{
		intParam(0), intParam(1), intParam(7), intParam(-42), intParam(math.MinInt64), intParam(math.MaxInt64),
		{Type: mysql.MYSQL_TYPE_LONGLONG, Unsigned: true, Value: binary.LittleEndian.AppendUint64(nil, math.MaxUint64)},
		{Type: mysql.MYSQL_TYPE_TINY, Value: []byte{0xfe}},
		{Type: mysql.MYSQL_TYPE_NULL, Null: true},
		str(mysql.MYSQL_TYPE_VAR_STRING, ""),
		str(mysql.MYSQL_TYPE_VAR_STRING, "it's"),
		str(mysql.MYSQL_TYPE_VAR_STRING, `back\slash \' "q" ?`),
		str(mysql.MYSQL_TYPE_VAR_STRING, "zürich 東京 🚀"),
		str(mysql.MYSQL_TYPE_STRING, "line\nbreak\x00nul\x1a"),
		str(mysql.MYSQL_TYPE_NEWDECIMAL, "-12345.6789"),
		str(mysql.MYSQL_TYPE_NEWDECIMAL, "0.000001"),
		{Type: mysql.MYSQL_TYPE_DOUBLE, Value: binary.LittleEndian.AppendUint64(nil, math.Float64bits(-2.5e-7))},
		{Type: mysql.MYSQL_TYPE_FLOAT, Value: binary.LittleEndian.AppendUint32(nil, math.Float32bits(3.25))},
		date(2026, 1, 5, 0, 0, 0, 0),
		date(1999, 12, 31, 23, 59, 58, 120),
		{Type: mysql.MYSQL_TYPE_DATE, Value: []byte{4, 0xea, 0x07, 2, 28}},
	}
}

// TestScatterTemplateMatchesBinding: a prepared scatter SELECT planned once as a template
// sends, for every set of bound values, the same statements to the same shards, with the
// same merge, as today's path: binding the values into a freshly parsed tree and planning
// it. Where the template declines (one shard, a value that does not prune), the statement
// is planned in full, as before.
func TestScatterTemplateMatchesBinding(t *testing.T) {
	vals := scatterParamValues()
	for _, sql := range scatterPreparedStmts {
		t.Run(sql, func(t *testing.T) {
			s, snap := newTestSession(t, plantest.ShardedConfig(), "app", "shop")
			tmpl := planner.PrepareScatter(s.planner(snap), snap, sql, s.parseOne)
			if tmpl.Shards == nil {
				t.Fatal("no scatter template")
			}
			n := 0
			for _, tmplSharded := range tmpl.Shards {
				n = max(n, len(tmplSharded.Holes))
			}
			var ms planner.MarkerCollector
			node, err := s.parseOne(sql)
			if err != nil {
				t.Fatal(err)
			}
			node.Accept(&ms)
			resolved := 0
			for k := range 3 * len(vals) {
				params := make([]wire.Param, len(ms))
				for i := range params {
					params[i] = vals[(k+i*(k%5+1))%len(vals)]
				}
				s.ids.last = uint64(k) * 37 // a session value the statement may embed
				sp, cols, ok := tmpl.Resolve(execViewOf(s), snap, params, s.parseOne)
				fresh, err := s.parseOne(sql)
				if err != nil {
					t.Fatal(err)
				}
				if err := planner.BindParams(fresh, params); err != nil {
					t.Fatal(err)
				}
				want, werr := s.plan(snap, fresh, sql, nil)
				wsp, _ := want.(*plan.Scatter)
				if !ok {
					if werr == nil && wsp != nil && len(wsp.Targets) > 1 {
						t.Errorf("params %v: the template declined a statement binding sends to %d shards", params, len(wsp.Targets))
					}
					continue
				}
				resolved++
				if werr != nil || wsp == nil {
					t.Fatalf("params %v: template sent %v, binding planned %v (scatter %v)", params, sp.Describe(), werr, wsp != nil)
				}
				if !reflect.DeepEqual(sp.Targets, wsp.Targets) {
					t.Errorf("params %v:\ntemplate %q\nbinding  %q", params, targetSQL(sp), targetSQL(wsp))
				}
				if !slices.Equal(sp.Merge.Steps(), wsp.Merge.Steps()) || !reflect.DeepEqual(cols, wsp.Columns) {
					t.Errorf("params %v: merge %q columns %v, binding %q %v", params, sp.Merge.Steps(), cols, wsp.Merge.Steps(), wsp.Columns)
				}
			}
			want := len(vals)
			if strings.Contains(sql, "LIMIT") && strings.Contains(sql[strings.Index(sql, "LIMIT"):], "?") {
				want = 3 // most values are not LIMIT values: planning refuses them too
			}
			if strings.Contains(sql, "account_id IN") {
				want = 3 // most values are no keys of by_account's mod: planning refuses them too
			}
			if resolved < want {
				t.Errorf("%d of %d executions resolved by the template", resolved, 3*len(vals))
			}
		})
	}
}

func targetSQL(sp *plan.Scatter) []string {
	var out []string
	for _, t := range sp.Targets {
		out = append(out, t.Shard.Name+": "+t.SQL)
	}
	return out
}

// TestScatterTemplateDeclines: statements whose plan depends on their values, or on more
// than the values, get no template and are planned in full at each execution.
func TestScatterTemplateDeclines(t *testing.T) {
	for _, sql := range []string{
		"SELECT * FROM orders WHERE amount > ? LIMIT ? FOR UPDATE",
		"SELECT note, COUNT(*) FROM orders GROUP BY note HAVING COUNT(*) > ?",
		"SELECT ? + 1, id FROM orders",
		"SELECT ?, COUNT(*) FROM orders",
		"SELECT DISTINCT ?, note FROM orders",
		"SELECT * FROM accounts WHERE owner = ? LIMIT ?",
		"SELECT LAST_INSERT_ID(), id FROM orders WHERE amount > ?",
		"SELECT * FROM orders WHERE amount > ? AND note <> @@warning_count",
		"SELECT * FROM orders WHERE user_id IN (SELECT user_id FROM order_items WHERE price > ?)",
		"SELECT * FROM orders WHERE user_id = 5 AND amount > 3",
	} {
		t.Run(sql, func(t *testing.T) {
			s, snap := newTestSession(t, plantest.ShardedConfig(), "app", "shop")
			if tmpl := planner.PrepareScatter(s.planner(snap), snap, sql, s.parseOne); tmpl.Shards != nil {
				t.Errorf("a scatter template for %d shards", len(tmpl.Shards))
			}
		})
	}
}

// TestPreparedScatterParsesNothing: a prepared SELECT that its parameters send to several
// shards is planned once, at its first such execution; later executions parse nothing.
// (The fake backend answers one column: these statements need no hidden merge columns.)
func TestPreparedScatterParsesNothing(t *testing.T) {
	for _, sql := range []string{
		"SELECT * FROM orders WHERE amount > ?",
		"SELECT * FROM orders WHERE user_id IN (?, ?)",
		"SELECT * FROM orders WHERE user_id IN (?, ?, ?) AND note <> ?",
		"SELECT o.user_id, i.sku FROM orders o JOIN order_items i ON i.user_id = o.user_id WHERE o.created >= ? AND i.price BETWEEN ? AND ?",
		"SELECT * FROM events WHERE id BETWEEN ? AND ?",
		"SELECT * FROM orders WHERE note = -? OR amount = ? * -1",
	} {
		t.Run(sql, func(t *testing.T) {
			// The first execution plans the template; the keys differ by 1000 (several shards).
			checkExecutionsParse(t, sql, 1, func(v int64, i int) wire.Param { return intParam(v + int64(i)*1000) })
		})
	}
}

// TestPreparedScatterAfterReload: after a reload the template no longer holds; the next
// execution plans the statement again (four parses: its bound route, the full plan, the
// template's two trees), the ones after it parse nothing, and every execution goes to the
// shards of the new rules.
func TestPreparedScatterAfterReload(t *testing.T) {
	be := newFakeBackend()
	r := shardedRouter(t, be)
	s := fakeSession(t, r, "app", 1)
	s.db = "shop"
	ctx := context.Background()
	const sql = "SELECT * FROM orders WHERE user_id IN (?, ?)"
	st, err := s.Prepare(ctx, sql)
	if err != nil {
		t.Fatal(err)
	}
	shardsOf := func(params []wire.Param) []string { // where binding the values sends it
		node, err := s.parseOne(sql)
		if err != nil {
			t.Fatal(err)
		}
		if err := planner.BindParams(node, params); err != nil {
			t.Fatal(err)
		}
		p, err := s.plan(r.rules.Load(), node, sql, nil)
		sp, ok := p.(*plan.Scatter)
		if err != nil || !ok {
			return nil
		}
		var out []string
		for _, tg := range sp.Targets {
			out = append(out, tg.Shard.Name)
		}
		slices.Sort(out)
		return out
	}
	// Two keys on two shards that the reversed shard list below does not map onto each other.
	var params []wire.Param
	var before []string
	for k := int64(1); params == nil; k++ {
		p := []wire.Param{intParam(1), intParam(k)}
		if sh := shardsOf(p); len(sh) == 2 && !(sh[0] == "s0" && sh[1] == "s3") && !(sh[0] == "s1" && sh[1] == "s2") {
			params, before = p, sh
		}
	}
	var w clientRecorder
	for range 2 {
		if err := s.Execute(ctx, st, params, &w); err != nil {
			t.Fatal(err)
		}
	}
	cfg := plantest.ShardedConfig()
	cfg.Schemes[0].Shards = []string{"s3", "s2", "s1", "s0"} // by_user: every slot on another shard
	snap, err := rules.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.rules.Swap(snap)
	after := shardsOf(params)
	if slices.Equal(before, after) || len(after) != 2 {
		t.Fatalf("the reload moved %v to %v", before, after)
	}
	be.takeLog()
	parses := s.parses
	for i := range 4 {
		if err := s.Execute(ctx, st, params, &w); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range be.takeLog() {
			got = append(got, l[:strings.IndexByte(l, '#')])
		}
		slices.Sort(got)
		if got = slices.Compact(got); !slices.Equal(got, after) {
			t.Errorf("execution %d after the reload ran on %v, want %v", i, got, after)
		}
		if want := 4; s.parses-parses != want {
			t.Errorf("%d executions after the reload parsed %d times, want %d", i+1, s.parses-parses, want)
		}
	}
}
