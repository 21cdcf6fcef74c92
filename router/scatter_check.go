package router

import (
	"errors"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// erOutOfSortMemory is ER_OUT_OF_SORTMEMORY (SQLSTATE HY001).
const erOutOfSortMemory = 1038

// tooManyGroups turns the merge's ErrTooManyRows into the client's error: the groups a
// scatter query may hold are bounded by server.max_scatter_groups.
func tooManyGroups(err error, max int) error {
	if !errors.Is(err, merge.ErrTooManyRows) {
		return err
	}
	return sqlerr.New(erOutOfSortMemory,
		"Out of sort memory: this query spans shards and its merge would hold more than %d groups (server.max_scatter_groups); narrow it, add a LIMIT, or raise the limit", max)
}

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
	for _, c := range m.computed {
		if !ok(c.col) || !ok(c.weight) {
			return false
		}
	}
	for _, a := range m.aggs {
		if !ok(a.col) || !ok(a.weight) || (a.fn == merge.AggAvg && (!ok(a.sum) || !ok(a.count))) {
			return false
		}
	}
	return true
}

// followsGroups reports whether sorting merged groups by post changes nothing: post is a
// prefix of the group keys, ascending, as the groups are merged (equal keys keep that order).
func followsGroups(post, groups []mergeKey) bool {
	if len(post) == 0 || len(post) > len(groups) {
		return false
	}
	for i, k := range post {
		g := groups[i]
		if k.desc || g.desc || k.val != g.val || k.weight != g.weight {
			return false
		}
	}
	return true
}
