package topo

import (
	"context"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/pool"
)

// alreadyPromoted recognises a replica a previous leader made a primary (RESET SLAVE ALL, so
// it has no replication configured) but died before publishing: it has received nothing since
// it applied everything it had received, so what it applied (gtid_slave_pos) is what it
// received. done is false for a server that still has replication configured.
func alreadyPromoted(ctx context.Context, c *pool.Conn) (pos health.GTIDPos, done bool, err error) {
	st, err := c.Query(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return nil, false, err
	}
	if len(st.Values) > 0 {
		return nil, false, nil
	}
	rows, err := c.Query(ctx, "SELECT @@gtid_slave_pos AS pos")
	if err != nil {
		return nil, true, err
	}
	pos, err = health.ParseGTIDPos(rows.Get(0, "pos"))
	return pos, true, err
}
