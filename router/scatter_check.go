package router

import "github.com/shardproxy/shardproxy/merge"

// fits reports whether every column the merge reads (sort, group and post-sort keys,
// aggregates) is among the n columns the shards returned: a shard that answers with fewer
// columns than the plan expects fails the statement instead of indexing past a row.
func (m *mergePlan) fits(idx func(colRef) int, n int) bool {
	ok := func(r colRef) bool {
		if r == noCol {
			return true
		}
		i := idx(r)
		return i >= 0 && i < n
	}
	for _, ks := range [][]mergeKey{m.order, m.post} {
		for _, k := range ks {
			if !ok(k.val) || !ok(k.weight) {
				return false
			}
		}
	}
	for _, a := range m.aggs {
		if !ok(a.col) || !ok(a.weight) || (a.fn == merge.AggAvg && (!ok(a.sum) || !ok(a.count))) {
			return false
		}
	}
	return true
}
