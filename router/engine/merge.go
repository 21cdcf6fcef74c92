package engine

import (
	"math"
	"strconv"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/wire"
)

// The merge of a Scatter's rows: plan.Merge's steps over the shards' row streams.

// MergeRows chains the merge steps of m over the shards' streams: their rows, whose columns
// have these definitions and kinds, idx mapping a ColRef to its index in a row; at most
// maxGroups groups are held (merge.ErrTooManyRows beyond).
func MergeRows(m *plan.Merge, streams []merge.Stream, cols []wire.ColDef, kinds []merge.Kind, idx func(plan.ColRef) int, maxGroups int) merge.Stream {
	keys := func(ks []plan.MergeKey) []merge.Key {
		out := make([]merge.Key, len(ks))
		for i, k := range ks {
			out[i] = merge.Key{Col: idx(k.Val), Weight: -1, Kind: kinds[idx(k.Val)], Desc: k.Desc}
			if k.Weight != plan.NoCol {
				out[i].Weight = idx(k.Weight)
			}
		}
		return out
	}
	var rows merge.Stream
	if len(m.Order) > 0 {
		rows = merge.Sorted(streams, keys(m.Order))
	} else {
		rows = merge.Interleaved(streams)
	}
	if m.Group {
		aggs := make([]merge.Agg, len(m.Aggs))
		for i, a := range m.Aggs {
			col := idx(a.Col)
			aggs[i] = merge.Agg{Func: a.Func, Col: col, Kind: kinds[col], Weight: -1, Scale: int(cols[col].Decimals), Internal: a.Internal}
			if a.Weight != plan.NoCol {
				aggs[i].Weight = idx(a.Weight)
			}
			if a.Func == merge.AggAvg {
				aggs[i].Sum, aggs[i].Count = idx(a.Sum), idx(a.Count)
				aggs[i].Kind = kinds[aggs[i].Sum]
			}
		}
		groupKeys := keys(m.Order)
		if m.Branched {
			col := groupKeys[len(groupKeys)-m.Distinct].Col
			for i, a := range m.Aggs {
				aggs[i].OnlyCol, aggs[i].Only = col, []byte(strconv.Itoa(a.Branch))
			}
		}
		if m.Distinct > 0 {
			rows = distinctMerge(rows, groupKeys, m.Aggs, aggs, kinds)
			groupKeys = groupKeys[:len(groupKeys)-m.Distinct]
		}
		rows = merge.Groups(rows, groupKeys, aggs)
		if m.Distinct > 0 && len(groupKeys) == 0 {
			rows = merge.OrRow(rows, emptyAggRow(len(cols), aggs))
		}
	}
	if m.Rows != nil {
		ev := m.Rows.Bind(kinds, cols, idx)
		rows = merge.Filter(rows, func(row [][]byte) (bool, error) { return ev.Eval(row), nil })
	}
	switch {
	case len(m.Post) > 0 && m.Count >= 0 && m.Count <= math.MaxInt64-m.Offset:
		// ORDER BY over the merged groups with LIMIT: only the best offset+count are held.
		rows = merge.TopN(rows, keys(m.Post), m.Offset+m.Count, maxGroups)
	case len(m.Post) > 0:
		rows = merge.SortAllAtMost(rows, keys(m.Post), maxGroups)
	}
	if m.Offset > 0 || m.Count >= 0 {
		rows = merge.Limit(rows, m.Offset, m.Count)
	}
	return rows
}
