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
