package engine

import (
	"context"
	"fmt"
	"slices"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// ReadHeader reads a result set's column count and definitions (copied) and their EOF.
func ReadHeader(ctx context.Context, c Conn) ([][]byte, int, error) {
	bw := c.Wire()
	p, err := bw.ReadPacket()
	if err != nil {
		return nil, 0, IOErr(ctx, c, err)
	}
	if wire.IsErr(p) {
		return nil, 0, wire.ParseErr(p)
	}
	if len(p) == 0 {
		return nil, 0, Malformed(c, "an empty packet")
	}
	if p[0] == wire.OKHeader {
		c.State().MarkBroken()
		return nil, 0, sqlerr.New(sqlerr.ErUnknownError, "router: a shard answered a scatter SELECT without rows")
	}
	n, ln := wire.LenencInt(p)
	if ln == 0 || ln != len(p) || n > wire.MaxColumns {
		return nil, 0, Malformed(c, "a Malformed column count")
	}
	defs := make([][]byte, 0, min(n, 64))
	for i := uint64(0); i <= n; i++ {
		d, err := bw.ReadPacket()
		if err != nil {
			return nil, 0, IOErr(ctx, c, err)
		}
		if i == n {
			if !wire.IsEOF(d) {
				return nil, 0, Malformed(c, "no EOF after the column definitions")
			}
			break
		}
		if _, ok := wire.ParseColDef(d); !ok {
			return nil, 0, Malformed(c, fmt.Sprintf("a Malformed definition of column %d of %d", i+1, n))
		}
		defs = append(defs, slices.Clone(d))
	}
	return defs, int(n), nil
}
