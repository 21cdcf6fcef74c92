package router

import (
	"context"

	"github.com/shardproxy/shardproxy/router/engine"
)

// A scatter query with DISTINCT aggregates over several argument lists joins each shard's
// rows with a derived table of branch numbers (scatter_distinct.go). Grouping that join
// goes through a temporary table, and MariaDB then describes an expression column as that
// table's field: its alias as org_name, without the BINARY flag of a number. One MariaDB
// holding every row, grouping the client's statement without the join, describes it as the
// expression itself. The same statement with LIMIT 0 is answered without being run, its
// columns described as the expressions; so the first shard is asked that first, and the
// client gets its column definitions. It costs one round trip to one shard.

// probeColumns runs sc's probe and returns its column definitions.
func probeColumns(ctx context.Context, sc *scatterConn) ([][]byte, error) {
	if err := engine.SendQuery(ctx, sc.c, sc.target.Probe); err != nil {
		sc.err = err
		return nil, err
	}
	defs, ncols, err := engine.ReadHeader(ctx, sc.c)
	if err != nil {
		sc.err = err
		if !sc.c.Broken() {
			sc.stream = engine.NewDoneStream(sc.c.Status())
		}
		return nil, err
	}
	st := engine.NewRowStream(ctx, sc.c, ncols)
	for !st.Done() {
		if _, err := st.Next(); err != nil {
			sc.err = err
			return nil, err
		}
	}
	return defs, nil
}
