package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/shardproxy/shardproxy/wire"
)

// Reading results a row at a time, and the small exchanges the router needs besides relaying.

// RowStream reads one backend's text result set, row by row, after its header (ReadHeader):
// a merge.Stream. NewDoneStream is one whose result already ended.
type RowStream struct {
	ctx      context.Context
	c        Conn
	ncols    int
	vals     [][]byte
	done     bool   // the closing EOF was read
	status   uint16 // from the closing EOF
	warnings uint16
	rows     int64
}

// NewRowStream reads the rows of c's result set of ncols columns, whose header was read.
func NewRowStream(ctx context.Context, c Conn, ncols int) *RowStream {
	return &RowStream{ctx: ctx, c: c, ncols: ncols}
}

// NewDoneStream is a stream whose result ended with status (an ERR packet instead of a
// result set, say): it has no rows.
func NewDoneStream(status uint16) *RowStream { return &RowStream{done: true, status: status} }

// Done reports whether the closing EOF (or an ERR packet) was read.
func (st *RowStream) Done() bool { return st.done }

// Status is the server status of the closing EOF.
func (st *RowStream) Status() uint16 { return st.status }

// Warnings is the warning count of the closing EOF.
func (st *RowStream) Warnings() uint16 { return st.warnings }

// Next reads the shard's next row (nil at the closing EOF, whose status and warnings it
// keeps); an ERR packet ends the stream with its error. The row is valid until the next call.
func (st *RowStream) Next() ([][]byte, error) {
	if st.done {
		return nil, nil
	}
	p, err := st.c.Wire().ReadPacket()
	if err != nil {
		return nil, IOErr(st.ctx, st.c, err)
	}
	switch {
	case wire.IsErr(p):
		st.done = true
		return nil, wire.ParseErr(p)
	case wire.IsEOF(p):
		st.done = true
		st.status, _ = wire.Status(p)
		if len(p) >= 3 {
			st.warnings = binary.LittleEndian.Uint16(p[1:])
		}
		st.c.State().SetStatus(st.status)
		return nil, nil
	}
	st.vals = st.vals[:0]
	for range st.ncols {
		if len(p) > 0 && p[0] == 0xfb {
			st.vals = append(st.vals, nil)
			p = p[1:]
			continue
		}
		v, _, n := wire.LenencString(p)
		if n == 0 {
			return nil, Malformed(st.c, fmt.Sprintf("a malformed row (row %d)", st.rows+1))
		}
		if v == nil {
			v = p[n:n]
		}
		st.vals = append(st.vals, v)
		p = p[n:]
	}
	if len(p) != 0 {
		return nil, Malformed(st.c, fmt.Sprintf("a row longer than its %d columns (row %d)", st.ncols, st.rows+1))
	}
	st.rows++
	return st.vals, nil
}

// RelayFieldList relays column definitions up to the closing EOF.
func RelayFieldList(ctx context.Context, c Conn, w wire.PacketWriter) error {
	for {
		p, err := c.Wire().ReadPacket()
		if err != nil {
			return IOErr(ctx, c, err)
		}
		if wire.IsErr(p) {
			return wire.ParseErr(p)
		}
		if err := w.WritePacket(p); err != nil {
			c.State().MarkBroken()
			return err
		}
		if wire.IsEOF(p) {
			return nil
		}
	}
}

// SendQuery writes a COM_QUERY of sql to c without copying the statement.
func SendQuery(ctx context.Context, c Conn, sql string) error {
	bw := c.Wire()
	bw.ResetSeq()
	if err := bw.WriteCommandString(ComQuery, sql); err != nil {
		return IOErr(ctx, c, err)
	}
	if err := bw.Flush(); err != nil {
		return IOErr(ctx, c, err)
	}
	return nil
}

// Drain runs drain, which reads what is left of c's answer, within d: c's reads fail after
// it. A connection that survives gets its deadline cleared.
func Drain(c Conn, d time.Duration, drain func()) {
	nc := c.Wire().NetConn()
	_ = nc.SetDeadline(time.Now().Add(d))
	drain()
	if !c.State().Broken() {
		_ = nc.SetDeadline(time.Time{})
	}
}
