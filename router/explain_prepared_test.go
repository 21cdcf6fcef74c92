package router

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// TestPreparedExplain: EXPLAIN / ANALYZE of a statement on sharded tables as a prepared
// statement asks the shards the plain query with the same values asks, the same statements;
// a refused statement is refused at prepare with its own reason.
func TestPreparedExplain(t *testing.T) {
	cases := []struct {
		prepared string
		params   []int64
		plain    string
	}{
		{"EXPLAIN SELECT * FROM orders WHERE user_id = ?", []int64{5}, "EXPLAIN SELECT * FROM orders WHERE user_id = 5"},
		{"EXPLAIN SELECT owner FROM accounts WHERE account_id = ? AND owner <> 'x'", []int64{3}, "EXPLAIN SELECT owner FROM accounts WHERE account_id = 3 AND owner <> 'x'"},
		{"EXPLAIN FORMAT=JSON SELECT * FROM orders WHERE user_id IN (?, ?)", []int64{1, 2}, "EXPLAIN FORMAT=JSON SELECT * FROM orders WHERE user_id IN (1, 2)"},
		{"DESCRIBE SELECT status, COUNT(*) FROM orders WHERE total > ? GROUP BY status", []int64{7}, "DESCRIBE SELECT status, COUNT(*) FROM orders WHERE total > 7 GROUP BY status"},
		{"ANALYZE SELECT * FROM orders WHERE user_id = ?", []int64{8}, "ANALYZE SELECT * FROM orders WHERE user_id = 8"},
		{"EXPLAIN UPDATE accounts SET owner = 'y' WHERE account_id IN (?, ?)", []int64{1, 6}, "EXPLAIN UPDATE accounts SET owner = 'y' WHERE account_id IN (1, 6)"},
		{"EXPLAIN SELECT * FROM settings WHERE name = ?", []int64{4}, "EXPLAIN SELECT * FROM settings WHERE name = 4"},
	}
	sent := func(be *fakeBackend) []string {
		var out []string
		for _, l := range be.takeLog() {
			shard, stmt, _ := strings.Cut(l, ": ")
			shard, _, _ = strings.Cut(shard, "#")
			if strings.HasPrefix(stmt, "EXPLAIN") || strings.HasPrefix(stmt, "DESCRIBE") || strings.HasPrefix(stmt, "ANALYZE") {
				out = append(out, shard+": "+stmt)
			}
		}
		return out
	}
	for _, tc := range cases {
		t.Run(tc.prepared, func(t *testing.T) {
			ctx := context.Background()
			be := newFakeBackend()
			s := fakeSession(t, shardedRouter(t, be), "app", 1)
			s.db = "shop"
			var w clientRecorder
			if err := s.Query(ctx, tc.plain, true, &w); err != nil {
				t.Fatal(err)
			}
			want := sent(be)
			st, err := s.Prepare(ctx, tc.prepared)
			if err != nil {
				t.Fatalf("prepare: %v", err)
			}
			if st.NumParams() != len(tc.params) {
				t.Fatalf("%d parameters, want %d", st.NumParams(), len(tc.params))
			}
			be.takeLog()
			params := make([]wire.Param, len(tc.params))
			for i, v := range tc.params {
				params[i] = intParam(v)
			}
			if err := s.Execute(ctx, st, params, &w); err != nil {
				t.Fatalf("execute: %v", err)
			}
			got := sent(be)
			norm := func(xs []string) []string { // the bound text is restored: compare without spaces and quotes
				out := make([]string, len(xs))
				for i, x := range xs {
					out[i] = strings.NewReplacer(" ", "", "`", "").Replace(x)
				}
				return out
			}
			if len(want) == 0 || !slices.Equal(norm(got), norm(want)) {
				t.Errorf("prepared EXPLAIN asked\n%q\nthe plain one\n%q", got, want)
			}
		})
	}
	t.Run("RefusedStatement", func(t *testing.T) {
		s := fakeSession(t, shardedRouter(t, newFakeBackend()), "app", 1)
		s.db = "shop"
		_, err := s.Prepare(context.Background(), "EXPLAIN UPDATE orders SET user_id = ? WHERE user_id = 1")
		if sqlCode(err) != sqlerr.ErNotSupportedYet || strings.Contains(err.Error(), "EXPLAIN") {
			t.Errorf("prepared EXPLAIN of a refused statement: %v, want the statement's own 1235", err)
		}
	})
}

// TestBinaryRows: text result sets become binary ones by their columns' types.
func TestBinaryRows(t *testing.T) {
	var k engine.Collector
	b := &binaryRows{w: &k}
	one, name := "1", "orders"
	cols := []wire.Column{{Name: "id", Type: mysql.MYSQL_TYPE_LONGLONG}, {Name: "table", Type: mysql.MYSQL_TYPE_VAR_STRING}, {Name: "rows", Type: mysql.MYSQL_TYPE_LONGLONG}}
	if err := wire.WriteTextResult(b, cols, [][]*string{{&one, &name, nil}}, wire.StatusAutocommit); err != nil {
		t.Fatal(err)
	}
	defs := []wire.ColDef{{Type: mysql.MYSQL_TYPE_LONGLONG}, {Type: mysql.MYSQL_TYPE_VAR_STRING}, {Type: mysql.MYSQL_TYPE_LONGLONG}}
	want, err := engine.AppendBinaryRow(nil, defs, [][]byte{[]byte("1"), []byte("orders"), nil})
	if err != nil {
		t.Fatal(err)
	}
	// count, 3 definitions, EOF, the row, EOF
	if len(k.Pkts) != 7 || string(k.Pkts[5]) != string(want) {
		t.Fatalf("binary result %q, want row %q", k.Pkts, want)
	}
	if !wire.CheckBinaryRow(k.Pkts[5], []byte{mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_LONGLONG}) {
		t.Errorf("row %q does not decode as a binary row", k.Pkts[5])
	}
}
