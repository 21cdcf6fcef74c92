package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// ColDef is what a merge or a binary row encoding needs from a column definition.
type ColDef struct {
	Type      byte
	Flags     uint16
	Decimals  byte
	Collation uint16 // the character set number: a collation id (63: binary)
}

// ParseColDef checks a column definition packet and reads what ColDef holds.
func ParseColDef(p []byte) (ColDef, bool) {
	for range 6 { // catalog, schema, table, org_table, name, org_name
		_, _, n := wire.LenencString(p)
		if n == 0 {
			return ColDef{}, false
		}
		p = p[n:]
	}
	if len(p) < 11 {
		return ColDef{}, false
	}
	// 0x0c, charset(2), length(4), type, flags(2), decimals
	return ColDef{Type: p[7], Flags: binary.LittleEndian.Uint16(p[8:]), Decimals: p[10], Collation: binary.LittleEndian.Uint16(p[1:])}, true
}

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
		c.MarkBroken()
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
		if _, ok := ParseColDef(d); !ok {
			return nil, 0, Malformed(c, fmt.Sprintf("a Malformed definition of column %d of %d", i+1, n))
		}
		defs = append(defs, slices.Clone(d))
	}
	return defs, int(n), nil
}
