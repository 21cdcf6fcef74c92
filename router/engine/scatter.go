package engine

import (
	"context"
	"errors"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// ScatterConn is one shard's part of a running scatter query: the target it runs, its
// connection and the Interrupter armed on it (the session's), whether the statement was
// sent, the shard's row stream once its header was read, and the error it ended with.
type ScatterConn struct {
	Target plan.Target
	C      Conn
	It     *Interrupter
	Sent   bool // the statement was sent: an answer is pending until stream is done
	Stream *RowStream
	Err    error
}

// Gathered is what a scatter query's merged answer was: the rows sent to the client, and
// the warning count and server status of the shards' closing EOFs.
type Gathered struct {
	Rows     int64
	Warnings uint16
	Status   uint16
}

// Gather runs a Scatter's exchange on conns, one per target, acquired and armed by the
// caller: it sends each shard its statement, reads the column definitions, merges the rows
// by m (MergeRows, holding at most maxGroups groups) and writes one result set to w (in the
// binary protocol when bin), its column count, definitions and EOF with status, the rows,
// and a closing EOF with the shards' warnings and last status (with MORE_RESULTS when
// more). The caller ends each connection's part (ScatterConn.Pending, DrainScatter) and
// records the outcome.
func Gather(ctx context.Context, conns []*ScatterConn, m *plan.Merge, w wire.PacketWriter, status uint16, more, bin bool, maxGroups int) (Gathered, error) {
	probed, err := sendScatter(ctx, conns)
	if err != nil {
		return Gathered{}, err
	}
	defs, err := readScatterHeaders(ctx, conns)
	if err != nil {
		return Gathered{}, err
	}
	cols, err := scatterColumnsOf(m, defs)
	if err != nil {
		return Gathered{}, err
	}
	streams := make([]merge.Stream, len(conns))
	for i, sc := range conns {
		streams[i] = sc.Stream
	}
	rows := MergeRows(m, streams, cols.defs, cols.kinds, cols.idx, maxGroups)
	if err := writeScatterHeader(w, cols, probed, status, conns[0].Target.Shard); err != nil {
		return Gathered{}, err
	}
	sent, err := writeScatterRows(ctx, w, rows, cols.defs[:cols.visible], bin, maxGroups)
	if err != nil {
		return Gathered{}, err
	}
	warnings, last, err := drainScatterStreams(conns)
	if err != nil {
		return Gathered{}, err
	}
	eof := last
	if more {
		eof |= wire.StatusMoreResults
	}
	if err := w.WritePacket(wire.AppendEOF(nil, warnings, eof)); err != nil {
		return Gathered{}, err
	}
	return Gathered{Rows: sent, Warnings: warnings, Status: last}, nil
}

// sendScatter sends each shard its statement, after asking the first shard for the column
// definitions the client gets when its target has a Probe (probed; nil otherwise).
func sendScatter(ctx context.Context, conns []*ScatterConn) (probed [][]byte, err error) {
	if conns[0].Target.Probe != "" {
		if probed, err = probeColumns(ctx, conns[0]); err != nil {
			return nil, err
		}
	}
	for _, sc := range conns {
		if sc.Err = SendQuery(ctx, sc.C, sc.Target.SQL); sc.Err != nil {
			return nil, sc.Err
		}
		sc.Sent = true
	}
	return probed, nil
}

// readScatterHeaders reads each shard's result header, opening its row stream, and returns
// the first shard's column definitions; the shards must answer with as many columns.
func readScatterHeaders(ctx context.Context, conns []*ScatterConn) ([][]byte, error) {
	var defs [][]byte
	for i, sc := range conns {
		d, ncols, err := ReadHeader(ctx, sc.C)
		if err != nil {
			if !sc.C.State().Broken() {
				// The shard answered with an error packet: its connection is idle again.
				sc.Stream = NewDoneStream(sc.C.State().Status())
			}
			sc.Err = err
			return nil, err
		}
		sc.Stream = NewRowStream(ctx, sc.C, ncols)
		if i == 0 {
			defs = d
		} else if ncols != len(defs) {
			return nil, sqlerr.New(sqlerr.ErUnknownError, "shards answered with different column counts (%d on %s, %d on %s): are their tables the same?",
				len(defs), conns[0].Target.Shard.Name, ncols, sc.Target.Shard.Name)
		}
	}
	return defs, nil
}

// scatterColumns are the columns of a scatter's rows as the shards send them: the visible
// ones, then the hidden ones only the merge reads.
type scatterColumns struct {
	raw     [][]byte // the first shard's column definition packets
	defs    []wire.ColDef
	kinds   []merge.Kind
	visible int
}

// scatterColumnsOf parses the shards' column definitions and checks that they hold the
// columns merge plan m reads.
func scatterColumnsOf(m *plan.Merge, raw [][]byte) (scatterColumns, error) {
	visible := len(raw) - m.Hidden
	if visible < 1 {
		return scatterColumns{}, sqlerr.New(sqlerr.ErUnknownError, "router: scatter result has %d columns for %d hidden ones", len(raw), m.Hidden)
	}
	c := scatterColumns{raw: raw, defs: make([]wire.ColDef, len(raw)), kinds: make([]merge.Kind, len(raw)), visible: visible}
	for i, d := range raw {
		cd, _ := wire.ParseColDef(d) // ReadHeader checked them
		c.defs[i], c.kinds[i] = cd, merge.KindOf(cd.Type, cd.Flags)
	}
	if !m.Fits(c.idx, len(raw)) {
		return scatterColumns{}, sqlerr.New(sqlerr.ErUnknownError, "router: the shards answered with %d columns, fewer than the merge needs: are their tables the same?", len(raw))
	}
	return c, nil
}

// idx is the index in the row of a merge plan's column reference: a visible column's own,
// a hidden one's (negative, from -1) after the visible ones.
func (c scatterColumns) idx(r plan.ColRef) int {
	if r >= 0 {
		return int(r)
	}
	return c.visible + int(-1-r)
}

// writeScatterHeader writes the result header to the client: the first shard's column
// definitions without the hidden columns (or the probed ones, which must be as many), then
// an EOF with status.
func writeScatterHeader(w wire.PacketWriter, cols scatterColumns, probed [][]byte, status uint16, first *rules.Shard) error {
	if err := w.WritePacket(wire.AppendLenencInt(nil, uint64(cols.visible))); err != nil {
		return err
	}
	head := cols.raw[:cols.visible]
	if probed != nil {
		if len(probed) != len(cols.raw) {
			return sqlerr.New(sqlerr.ErUnknownError, "shard %s described %d columns, then answered with %d", first.Name, len(probed), len(cols.raw))
		}
		head = probed[:cols.visible]
	}
	for _, d := range head {
		if err := w.WritePacket(d); err != nil {
			return err
		}
	}
	return w.WritePacket(wire.AppendEOF(nil, 0, status))
}

// writeScatterRows writes the merged rows to the client, their visible columns (defs) only,
// as binary-protocol rows when bin is set, and returns how many it wrote.
func writeScatterRows(ctx context.Context, w wire.PacketWriter, rows merge.Stream, defs []wire.ColDef, bin bool, maxGroups int) (int64, error) {
	var buf []byte
	var sent int64
	for {
		if ctx.Err() != nil {
			return sent, InterruptedError(ctx) // nothing more reaches the client once it ended
		}
		row, err := rows.Next()
		if err != nil {
			return sent, tooManyGroups(err, maxGroups)
		}
		if row == nil {
			return sent, nil
		}
		if bin {
			buf, err = AppendBinaryRow(buf[:0], defs, row[:len(defs)])
			if err != nil {
				return sent, err
			}
		} else {
			buf = AppendTextRow(buf[:0], row[:len(defs)])
		}
		if err := w.WritePacket(buf); err != nil {
			return sent, err
		}
		sent++
	}
}

// drainScatterStreams reads what the shards still send once the merge is done (it may stop
// early, at a LIMIT: at most the pushed-down LIMIT), so their connections stay usable, and
// returns the sum of their warnings and the last shard's status.
func drainScatterStreams(conns []*ScatterConn) (warnings, status uint16, err error) {
	for _, sc := range conns {
		for !sc.Stream.Done() {
			if _, err := sc.Stream.Next(); err != nil {
				sc.Err = err
				return 0, 0, err
			}
		}
		warnings += sc.Stream.Warnings()
		status = sc.Stream.Status()
	}
	return warnings, status, nil
}

// Pending reports whether the shard still owes (part of) its answer on a usable connection.
func (sc *ScatterConn) Pending() bool {
	return sc.Sent && !sc.C.State().Broken() && (sc.Stream == nil || !sc.Stream.Done())
}

// DrainScatter reads what is left of an interrupted shard's answer (its connection's
// deadline bounds the reads); a connection that fails to answer is marked broken.
func DrainScatter(ctx context.Context, sc *ScatterConn) {
	if sc.Stream == nil {
		_, ncols, err := ReadHeader(ctx, sc.C)
		if err != nil {
			if !sc.C.State().Broken() { // an ERR packet leaves the connection clean; an I/O error marked it broken
				sc.Stream = NewDoneStream(sc.C.State().Status())
			}
			return
		}
		sc.Stream = NewRowStream(ctx, sc.C, ncols)
	}
	for !sc.Stream.Done() && !sc.C.State().Broken() {
		if _, err := sc.Stream.Next(); err != nil {
			return
		}
	}
}

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

// probeColumns runs sc's probe and returns its column definitions.
func probeColumns(ctx context.Context, sc *ScatterConn) ([][]byte, error) {
	if err := SendQuery(ctx, sc.C, sc.Target.Probe); err != nil {
		sc.Err = err
		return nil, err
	}
	defs, ncols, err := ReadHeader(ctx, sc.C)
	if err != nil {
		sc.Err = err
		if !sc.C.State().Broken() {
			sc.Stream = NewDoneStream(sc.C.State().Status())
		}
		return nil, err
	}
	st := NewRowStream(ctx, sc.C, ncols)
	for !st.Done() {
		if _, err := st.Next(); err != nil {
			sc.Err = err
			return nil, err
		}
	}
	return defs, nil
}
