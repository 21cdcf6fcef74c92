package engine

import (
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/wire"

	"github.com/shardproxy/shardproxy/merge"
)

// sliceStream is a merge.Stream over fixed rows; "NULL" is NULL.
type sliceStream struct {
	rows [][]string
	i    int
}

func (s *sliceStream) Next() ([][]byte, error) {
	if s.i >= len(s.rows) {
		return nil, nil
	}
	row := make([][]byte, len(s.rows[s.i]))
	for j, v := range s.rows[s.i] {
		if v != "NULL" {
			row[j] = []byte(v)
		}
	}
	s.i++
	return row, nil
}

// TestDistinctMerge runs the two-level merge of DISTINCT aggregates over shards' rows
// grouped by (g, x). Client columns: g, COUNT(DISTINCT x), COUNT(*), SUM(DISTINCT x),
// AVG(DISTINCT x), AVG(y); hidden: x, SUM(DISTINCT x), COUNT(DISTINCT x), SUM(y), COUNT(y).
func TestDistinctMerge(t *testing.T) {
	kinds := []merge.Kind{merge.KindSigned, merge.KindSigned, merge.KindSigned, merge.KindDecimal, merge.KindDecimal, merge.KindDecimal,
		merge.KindSigned, merge.KindDecimal, merge.KindSigned, merge.KindDecimal, merge.KindSigned}
	cols := make([]wire.ColDef, len(kinds))
	cols[4].Decimals, cols[5].Decimals = 4, 4
	program := func(grouped bool) *plan.Merge {
		m := &plan.Merge{Group: true, Count: -1, Distinct: 1, Hidden: 5}
		if grouped {
			m.Order = append(m.Order, plan.MergeKey{Val: 0, Weight: plan.NoCol})
		}
		m.Order = append(m.Order, plan.MergeKey{Val: plan.HiddenCol(0), Weight: plan.NoCol})
		agg := func(fn merge.AggFunc, col plan.ColRef, distinct bool) plan.MergeAgg {
			return plan.MergeAgg{Func: fn, Col: col, Weight: plan.NoCol, Sum: plan.NoCol, Count: plan.NoCol, Distinct: distinct}
		}
		avgD := agg(merge.AggAvg, 4, true)
		avgD.Sum, avgD.Count = plan.HiddenCol(1), plan.HiddenCol(2)
		avg := agg(merge.AggAvg, 5, false)
		avg.Sum, avg.Count = plan.HiddenCol(3), plan.HiddenCol(4)
		m.Aggs = []plan.MergeAgg{agg(merge.AggCount, 1, true), agg(merge.AggCount, 2, false), agg(merge.AggSum, 3, true), avgD, avg}
		return m
	}
	for _, c := range []struct {
		name    string
		grouped bool
		shards  [][][]string
		want    string
	}{
		{
			name:    "a value on several shards counts once",
			grouped: true,
			shards: [][][]string{
				{{"1", "1", "2", "5.00", "5.0000", "1.0000", "5", "5.00", "1", "2.00", "2"}, {"1", "1", "1", "7.00", "7.0000", "3.0000", "7", "7.00", "1", "3.00", "1"}},
				{{"1", "1", "3", "5.00", "5.0000", "2.0000", "5", "5.00", "1", "6.00", "3"}, {"2", "1", "1", "9.00", "9.0000", "1.0000", "9", "9.00", "1", "1.00", "1"}},
			},
			want: "1,2,6,12.00,6.0000,1.8333;2,1,1,9.00,9.0000,1.0000",
		},
		{
			name:    "NULL is no value",
			grouped: true,
			shards: [][][]string{
				{{"1", "0", "4", "NULL", "NULL", "NULL", "NULL", "NULL", "0", "NULL", "0"}},
				{{"1", "0", "1", "NULL", "NULL", "NULL", "NULL", "NULL", "0", "NULL", "0"}, {"1", "1", "1", "2.00", "2.0000", "4.0000", "2", "2.00", "1", "4.00", "1"}},
			},
			want: "1,1,6,2.00,2.0000,4.0000",
		},
		{
			name:   "no rows without GROUP BY: one row of zero counts",
			shards: [][][]string{{}, {}},
			want:   "NULL,0,0,NULL,NULL,NULL",
		},
		{
			name:    "no rows with GROUP BY: no groups",
			grouped: true,
			shards:  [][][]string{{}, {}},
			want:    "",
		},
		{
			name: "without GROUP BY: one row over every value",
			shards: [][][]string{
				{{"1", "1", "1", "3.00", "3.0000", "1.0000", "3", "3.00", "1", "1.00", "1"}},
				{{"2", "1", "1", "3.00", "3.0000", "2.0000", "3", "3.00", "1", "2.00", "1"}, {"2", "1", "2", "4.00", "4.0000", "2.0000", "4", "4.00", "1", "4.00", "2"}},
			},
			want: "1,2,4,7.00,3.5000,1.7500",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			streams := make([]merge.Stream, len(c.shards))
			for i, rows := range c.shards {
				streams[i] = &sliceStream{rows: rows}
			}
			m := program(c.grouped)
			idx := func(r plan.ColRef) int {
				if r >= 0 {
					return int(r)
				}
				return 6 + int(-1-r)
			}
			if g := collectRows(t, MergeRows(m, streams, cols, kinds, idx, 1000), 6); g != c.want {
				t.Errorf("got  %s\nwant %s", g, c.want)
			}
		})
	}
}

// TestBranchedDistinctMerge runs the merge of DISTINCT aggregates over two argument lists:
// shards' rows grouped by (g, branch, IF(branch = 0, a, NULL), IF(branch = 1, b, NULL)).
// Client columns: g, COUNT(DISTINCT a), COUNT(DISTINCT b), COUNT(*), MIN(c); hidden: the
// branch and the two branch values. A value on several shards counts once; COUNT(*) and
// MIN read branch 0 only (each branch holds every row of the group once).
func TestBranchedDistinctMerge(t *testing.T) {
	kinds := []merge.Kind{merge.KindSigned, merge.KindSigned, merge.KindSigned, merge.KindSigned, merge.KindSigned,
		merge.KindSigned, merge.KindSigned, merge.KindString}
	cols := make([]wire.ColDef, len(kinds))
	key := func(c plan.ColRef) plan.MergeKey { return plan.MergeKey{Val: c, Weight: plan.NoCol} }
	agg := func(fn merge.AggFunc, col plan.ColRef, distinct bool, branch int) plan.MergeAgg {
		return plan.MergeAgg{Func: fn, Col: col, Weight: plan.NoCol, Sum: plan.NoCol, Count: plan.NoCol, Distinct: distinct, Branch: branch}
	}
	m := &plan.Merge{Group: true, Count: -1, Distinct: 3, Branched: true, Hidden: 3,
		Order: []plan.MergeKey{key(0), key(plan.HiddenCol(0)), key(plan.HiddenCol(1)), key(plan.HiddenCol(2))},
		Aggs:  []plan.MergeAgg{agg(merge.AggCount, 1, true, 0), agg(merge.AggCount, 2, true, 1), agg(merge.AggCount, 3, false, 0), agg(merge.AggMin, 4, false, 0)},
	}
	shards := [][][]string{
		{
			{"1", "1", "1", "1", "5", "0", "1", "NULL"}, {"1", "1", "1", "1", "3", "0", "2", "NULL"},
			{"1", "2", "1", "2", "3", "1", "NULL", "x"},
		},
		{
			{"1", "1", "1", "1", "9", "0", "2", "NULL"}, {"1", "1", "1", "1", "9", "1", "NULL", "y"},
			{"2", "1", "0", "1", "1", "0", "7", "NULL"}, {"2", "1", "0", "1", "1", "1", "NULL", "NULL"},
		},
	}
	streams := make([]merge.Stream, len(shards))
	for i, rows := range shards {
		streams[i] = &sliceStream{rows: rows}
	}
	idx := func(r plan.ColRef) int {
		if r >= 0 {
			return int(r)
		}
		return 5 + int(-1-r)
	}
	if g, want := collectRows(t, MergeRows(m, streams, cols, kinds, idx, 1000), 5), "1,2,2,3,3;2,1,0,1,1"; g != want {
		t.Errorf("got  %s\nwant %s", g, want)
	}
}

// collectRows reads a stream to its end: the first n columns of each row, comma-separated,
// rows separated by semicolons, NULL as "NULL".
func collectRows(t *testing.T, s merge.Stream, n int) string {
	t.Helper()
	var got []string
	for {
		row, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if row == nil {
			return strings.Join(got, ";")
		}
		var vals []string
		for _, v := range row[:n] {
			if v == nil {
				vals = append(vals, "NULL")
			} else {
				vals = append(vals, string(v))
			}
		}
		got = append(got, strings.Join(vals, ","))
	}
}
