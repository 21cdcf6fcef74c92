package router

import (
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/shardproxy/shardproxy/router/plan"
)

// TestNextStatement: a batch is cut at semicolons outside strings, quoted names and
// comments, under the session's backslash rule.
func TestNextStatement(t *testing.T) {
	for _, tc := range []struct {
		sql       string
		backslash bool
		want      []string
	}{
		{"SELECT 1; SELECT 2", true, []string{"SELECT 1", " SELECT 2"}},
		{"SELECT 'a;b'; SELECT \"c;d\"", true, []string{"SELECT 'a;b'", " SELECT \"c;d\""}},
		{`SELECT 'it\'s;'; SELECT 2`, true, []string{`SELECT 'it\'s;'`, " SELECT 2"}},
		{`SELECT 'a\'; SELECT 2`, false, []string{`SELECT 'a\'`, " SELECT 2"}},
		{"SELECT 'it''s;'; SELECT 2", true, []string{"SELECT 'it''s;'", " SELECT 2"}},
		{"SELECT `a;b` FROM t; SELECT 2", true, []string{"SELECT `a;b` FROM t", " SELECT 2"}},
		{"SELECT 1 /* ; */; -- x;y\nSELECT 2 # z;\n", true, []string{"SELECT 1 /* ; */", " -- x;y\nSELECT 2 # z;\n"}},
		{"SELECT 1--1; SELECT 2", true, []string{"SELECT 1--1", " SELECT 2"}},
		{"SELECT 'unterminated; SELECT 2", true, []string{"SELECT 'unterminated; SELECT 2"}},
	} {
		var got []string
		for rest := tc.sql; rest != ""; {
			var st string
			st, rest = nextStatement(rest, tc.backslash)
			got = append(got, st)
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: %q, want %q", tc.sql, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: %q, want %q", tc.sql, got, tc.want)
				break
			}
		}
	}
	for _, tc := range []struct {
		sql   string
		blank bool
	}{
		{"", true}, {" ; \n", true}, {"/* c */ -- d\n# e", true}, {"/* c */ x", false}, {"--x", false},
	} {
		if got := blankSQL(tc.sql, true); got != tc.blank {
			t.Errorf("blankSQL(%q) = %v", tc.sql, got)
		}
	}
}

// bigInList is `SELECT id FROM orders WHERE user_id IN (v, v, ...)` padded past
// minBigStatement.
func bigInList(vals ...string) string {
	var b strings.Builder
	b.WriteString("SELECT id FROM orders WHERE status <> 'x' AND user_id IN (")
	for i := 0; b.Len() < 2*planner.MinBigStatement; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(vals[i%len(vals)])
	}
	b.WriteString(") AND id NOT IN ('a''b', 'c\\'d')")
	return b.String()
}

// TestBigLists: the long literal lists of a large statement are cut out before parsing and
// put back in the SQL sent; a shard key IN list still routes by its values.
func TestBigLists(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sql    string
		shards []string
	}{
		{"OneShard", bigInList("2", "'2'", "2.0", "+2"), []string{"s0"}},
		{"TwoShards", bigInList("1", "2"), []string{"s0", "s1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, snap := newTestSession(t, plantest.ShardedConfig(), "app", "shop")
			compact, lists := compactLists(tc.sql, true)
			if len(lists) != 1 || len(compact) > 200 {
				t.Fatalf("compacted to %d bytes with %d lists", len(compact), len(lists))
			}
			stmts, err := s.parseText(tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.plan(snap, stmts[0], tc.sql, nil)
			if err != nil {
				t.Fatal(err)
			}
			var shards, sqls []string
			if sp, ok := p.(*plan.Scatter); ok {
				for _, tg := range sp.Targets {
					shards, sqls = append(shards, tg.Shard.Name), append(sqls, tg.SQL)
				}
			} else {
				shard, sql := plan.First(p)
				shards, sqls = []string{shard.Name}, []string{sql}
			}
			if strings.Join(shards, ",") != strings.Join(tc.shards, ",") {
				t.Errorf("routed to %v, want %v", shards, tc.shards)
			}
			for _, q := range sqls {
				if strings.Contains(q, planner.BigListMark) || !strings.Contains(q, lists[0]) {
					t.Errorf("the SQL sent lacks the list (%d bytes)", len(q))
				}
			}
		})
	}
	// Lists that are not plain literals stay in the text.
	for _, sql := range []string{
		"SELECT 1 FROM t WHERE a IN (" + strings.Repeat("1, ", 600) + "b)",
		"SELECT 1 FROM t WHERE a IN (" + strings.Repeat("1, ", 600) + "0x1F)",
		"SELECT 1 FROM t WHERE a IN (" + strings.Repeat("1, ", 600) + "1e5)",
		"SELECT 1 FROM t WHERE a IN (" + strings.Repeat("1, ", 600) + "1 + 1)",
	} {
		if _, lists := compactLists(sql, true); lists != nil {
			t.Errorf("compacted a list that is not plain literals: ...%s", sql[len(sql)-12:])
		}
	}
	if got := (planner.BigLists{"1,2"}).Expand("x IN ('" + planner.BigListMark + "0" + planner.BigListClose + "')"); got != "x IN (1,2)" {
		t.Errorf("expand: %q", got)
	}
}
