package engine

import (
	"github.com/shardproxy/shardproxy/router/plan"

	"github.com/shardproxy/shardproxy/merge"
)

// Aggregates over DISTINCT values of a column that is not the shard key (COUNT(DISTINCT x),
// SUM(DISTINCT x), AVG(DISTINCT x)): a value may sit on several shards, so partial results do
// not add up. The shards group by the group keys and x (GROUP BY g, x, sorted), the proxy
// first combines each (g, x) across shards (one row per distinct value), then combines the
// rows of each group, where a distinct aggregate sees each x once. Both steps stream: the
// merge holds one row per level, whatever the number of values.

// Several DISTINCT argument lists (COUNT(DISTINCT a), COUNT(DISTINCT b)) cannot share one
// pushed-down GROUP BY: grouping by (a, b) would send every pair, and b would not come
// sorted within a group. Each list gets a branch instead: the shards cross join their rows
// with a derived table of branch numbers 0..n-1 and group by (group keys, branch, the
// list's arguments in its own branch, NULL elsewhere). Within a group, a shard's rows come
// branch after branch, each sorted by its values, so both levels of the merge stream as
// for one list: level one combines a (group, branch, value) across shards, level two
// combines a group's rows, a DISTINCT aggregate reading only its own branch's rows and the
// other aggregates only branch 0's (whose rows partition the group: every row of the group
// is in each branch once). Each shard reads its rows once per list; the merge holds one
// row per level. The client's columns are computed over the same tables as before, so
// their definitions are unchanged.

// distinctMerge is the first level of the two-level merge: rows equal on the group keys and
// the DISTINCT arguments (keys) are combined into one. A DISTINCT aggregate's partial is the
// same on every shard for one value (COUNT 1 or 0, SUM and COUNT of that one value), so it
// is kept once (MAX); the others combine as usual, AVG through its partial SUM and COUNT.
// The second level (merge.Groups over the group keys alone, with aggs) then counts, sums
// and averages over distinct values.
func distinctMerge(rows merge.Stream, keys []merge.Key, prog []plan.MergeAgg, aggs []merge.Agg, kinds []merge.Kind) merge.Stream {
	var first []merge.Agg
	for i, a := range aggs {
		keep := merge.Agg{Func: merge.AggMax, Weight: -1}
		switch {
		case prog[i].Distinct && a.Func == merge.AggAvg:
			first = append(first, withCol(keep, a.Sum, kinds), withCol(keep, a.Count, kinds))
		case prog[i].Distinct:
			first = append(first, withCol(keep, a.Col, kinds))
		case a.Func == merge.AggAvg:
			first = append(first,
				withCol(merge.Agg{Func: merge.AggSum, Weight: -1}, a.Sum, kinds),
				withCol(merge.Agg{Func: merge.AggCount, Weight: -1}, a.Count, kinds))
		default:
			first = append(first, a)
		}
	}
	return merge.Groups(rows, keys, first)
}

func withCol(a merge.Agg, col int, kinds []merge.Kind) merge.Agg {
	a.Col, a.Kind = col, kinds[col]
	return a
}

// emptyAggRow is the answer of an aggregate query without GROUP BY over no rows: COUNTs are
// 0, everything else NULL.
func emptyAggRow(width int, aggs []merge.Agg) [][]byte {
	row := make([][]byte, width)
	for _, a := range aggs {
		if a.Func == merge.AggCount {
			row[a.Col] = []byte("0")
		}
	}
	return row
}
