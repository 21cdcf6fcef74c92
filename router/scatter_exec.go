package router

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// shardStream reads one shard's result set, row by row, from its backend connection.
type shardStream struct {
	ctx      context.Context
	c        Conn
	ncols    int
	vals     [][]byte
	done     bool   // the closing EOF was read
	status   uint16 // from the closing EOF
	warnings uint16
	rows     int64
}

// Next reads the shard's next row (nil at the closing EOF, whose status and warnings it
// keeps); an ERR packet ends the stream with its error. The row is valid until the next call.
func (st *shardStream) Next() ([][]byte, error) {
	if st.done {
		return nil, nil
	}
	p, err := st.c.Wire().ReadPacket()
	if err != nil {
		return nil, engine.IOErr(st.ctx, st.c, err)
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
		st.c.SetStatus(st.status)
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
			return nil, engine.Malformed(st.c, fmt.Sprintf("a malformed row (row %d)", st.rows+1))
		}
		if v == nil {
			v = p[n:n]
		}
		st.vals = append(st.vals, v)
		p = p[n:]
	}
	if len(p) != 0 {
		return nil, engine.Malformed(st.c, fmt.Sprintf("a row longer than its %d columns (row %d)", st.ncols, st.rows+1))
	}
	st.rows++
	return st.vals, nil
}

// scatterConn is one shard's part of a running scatter query.
type scatterConn struct {
	target plan.Target
	c      Conn
	it     *engine.Interrupter
	sent   bool // the statement was sent: an answer is pending until stream is done
	stream *shardStream
	err    error
}

// runScatter sends each target its statement, merges the results and writes them to w
// (binary-protocol rows when bin is set, for a prepared statement).
func (s *Session) runScatter(ctx context.Context, snap *rules.Snapshot, sp *plan.Scatter, more bool, w wire.PacketWriter, bin bool) (err error) {
	targets := slices.Clone(sp.Targets)
	// A fixed acquisition order: two sessions never wait on each other's shards.
	slices.SortFunc(targets, func(a, b plan.Target) int { return strings.Compare(a.Shard.Name, b.Shard.Name) })
	conns := make([]*scatterConn, 0, len(targets))
	defer func() { err = s.endScatter(ctx, conns, err) }()
	if ctx.Err() != nil {
		return interruptedError(ctx)
	}
	for _, t := range targets {
		c, err := s.acquire(ctx, snap, t.Shard)
		if err != nil {
			return err
		}
		conns = append(conns, &scatterConn{target: t, c: c, it: s.intr.interruptOnDone(ctx, t.Shard, c)})
	}
	probed, err := sendScatter(ctx, conns)
	if err != nil {
		return err
	}
	defs, err := readScatterHeaders(ctx, conns)
	if err != nil {
		return err
	}
	m := sp.Merge
	cols, err := scatterColumnsOf(m, defs)
	if err != nil {
		return err
	}
	streams := make([]merge.Stream, len(conns))
	for i, sc := range conns {
		streams[i] = sc.stream
	}
	maxGroups := snap.Server().MaxScatterGroups
	rows := engine.MergeRows(m, streams, cols.defs, cols.kinds, cols.idx, maxGroups)
	if err := writeScatterHeader(w, cols, probed, s.status, conns[0].target.Shard); err != nil {
		return err
	}
	sent, err := writeScatterRows(ctx, w, rows, cols.defs[:cols.visible], bin, maxGroups)
	if err != nil {
		return err
	}
	warnings, status, err := drainScatterStreams(conns)
	if err != nil {
		return err
	}
	s.status = status
	if more {
		status |= wire.StatusMoreResults
	}
	if err := w.WritePacket(wire.AppendEOF(nil, warnings, status)); err != nil {
		return err
	}
	s.diag.set(planner.Diagnostics{RowCount: -1, FoundRows: sent, Count: int(warnings)})
	if warnings > 0 {
		s.diag.last.Warnings = s.scatterWarnings(ctx, conns)
	}
	return nil
}

// sendScatter sends each shard its statement, after asking the first shard for the column
// definitions the client gets when its target has a Probe (probed; nil otherwise).
func sendScatter(ctx context.Context, conns []*scatterConn) (probed [][]byte, err error) {
	if conns[0].target.Probe != "" {
		if probed, err = probeColumns(ctx, conns[0]); err != nil {
			return nil, err
		}
	}
	for _, sc := range conns {
		if sc.err = sendQuery(ctx, sc.c, sc.target.SQL); sc.err != nil {
			return nil, sc.err
		}
		sc.sent = true
	}
	return probed, nil
}

// readScatterHeaders reads each shard's result header, opening its row stream, and returns
// the first shard's column definitions; the shards must answer with as many columns.
func readScatterHeaders(ctx context.Context, conns []*scatterConn) ([][]byte, error) {
	var defs [][]byte
	for i, sc := range conns {
		d, ncols, err := engine.ReadHeader(ctx, sc.c)
		if err != nil {
			if !sc.c.Broken() {
				// The shard answered with an error packet: its connection is idle again.
				sc.stream = &shardStream{done: true, status: sc.c.Status()}
			}
			sc.err = err
			return nil, err
		}
		sc.stream = &shardStream{ctx: ctx, c: sc.c, ncols: ncols}
		if i == 0 {
			defs = d
		} else if ncols != len(defs) {
			return nil, sqlerr.New(sqlerr.ErUnknownError, "shards answered with different column counts (%d on %s, %d on %s): are their tables the same?",
				len(defs), conns[0].target.Shard.Name, ncols, sc.target.Shard.Name)
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
		cd, _ := wire.ParseColDef(d) // engine.ReadHeader checked them
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
			return sent, interruptedError(ctx) // nothing more reaches the client once it ended
		}
		row, err := rows.Next()
		if err != nil {
			return sent, tooManyGroups(err, maxGroups)
		}
		if row == nil {
			return sent, nil
		}
		if bin {
			buf, err = engine.AppendBinaryRow(buf[:0], defs, row[:len(defs)])
			if err != nil {
				return sent, err
			}
		} else {
			buf = engine.AppendTextRow(buf[:0], row[:len(defs)])
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
func drainScatterStreams(conns []*scatterConn) (warnings, status uint16, err error) {
	for _, sc := range conns {
		for !sc.stream.done {
			if _, err := sc.stream.Next(); err != nil {
				sc.err = err
				return 0, 0, err
			}
		}
		warnings += sc.stream.warnings
		status = sc.stream.status
	}
	return warnings, status, nil
}

// scatterWarnings collects SHOW WARNINGS from the shards that reported some.
func (s *Session) scatterWarnings(ctx context.Context, conns []*scatterConn) [][]*string {
	var out [][]*string
	for _, sc := range conns {
		if sc.stream.warnings == 0 || sc.c.Broken() {
			continue
		}
		if rows, err := engine.QueryRows(ctx, sc.c, "SHOW WARNINGS"); err == nil {
			out = append(out, rows...)
		}
	}
	return out
}

// scatterDrain bounds how long an interrupted scatter query waits for each killed shard to
// answer before closing its connection (the shards are drained in parallel).
const scatterDrain = 300 * time.Millisecond

// endScatter stops and releases every connection of a scatter query. When the statement was
// interrupted (deadline, KILL, client gone), each shard's query has been killed; their
// answers are drained in parallel, so the connections stay usable, and a shard that does not
// answer within scatterDrain loses its connection. When a shard answered with an error and
// the session keeps its connections (a transaction, autocommit=0, sticky state), the other
// shards' answers are read to their end: a statement error is not a lost connection, and the
// transaction goes on. Otherwise a connection whose result was not read to its end (another
// shard failed) is closed and its query killed.
func (s *Session) endScatter(ctx context.Context, conns []*scatterConn, err error) error {
	interrupted := ctx.Err() != nil
	if !interrupted && isStatementError(err) && (s.sticky || s.inTransaction() || s.txnOpen()) {
		for _, sc := range conns {
			if sc.pending() {
				drainScatter(ctx, sc)
			}
		}
	}
	if interrupted {
		var wg sync.WaitGroup
		for _, sc := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var perr error
				defer s.held.recovered(sc.c, &perr) // a panic breaks only this shard's connection
				s.drainInterrupted(ctx, sc, err)
			}()
		}
		wg.Wait()
	}
	var fatal error
	for _, sc := range conns {
		if !interrupted {
			kill := false
			if sc.pending() {
				sc.c.MarkBroken()
				kill = true
			}
			if fired := sc.it.Stop(); !fired && kill {
				_ = s.intr.killQuery(sc.target.Shard, sc.c, killReasonOf(err))
			}
		}
		cerr := sc.err
		if cerr == nil && err != nil && sc.c.Broken() {
			cerr = err
		}
		out := engine.Outcome{Status: s.status}
		if sc.stream != nil && sc.stream.done {
			out.Status = sc.stream.status
		}
		if ferr := s.finish(sc.target.Shard, sc.c, out, cerr); ferr != nil && errors.Is(ferr, sqlerr.ErrFatal) {
			fatal = ferr
		}
	}
	if fatal != nil {
		return fatal
	}
	s.rollbackOnDeadlock(err)
	if interrupted && err != nil {
		return interruptedError(ctx)
	}
	return err
}

// pending reports whether the shard still owes (part of) its answer on a usable connection.
func (sc *scatterConn) pending() bool {
	return sc.sent && !sc.c.Broken() && (sc.stream == nil || !sc.stream.done)
}

// isStatementError reports whether err is a MySQL error that leaves backend connections
// usable (a shard's own ERR packet, or the proxy's refusal of its answer), not an I/O failure.
func isStatementError(err error) bool {
	_, ok := sqlerr.As(err)
	return ok && !errors.Is(err, engine.ErrBackendIO) && !errors.Is(err, sqlerr.ErrFatal)
}

// drainInterrupted ends one shard's part of an interrupted scatter query: it waits for the
// KILL QUERY the interrupter sent (killing the query itself if the interrupter had not
// fired yet), then reads what is left of the shard's answer within scatterDrain.
func (s *Session) drainInterrupted(ctx context.Context, sc *scatterConn, err error) {
	fired := sc.it.Stop()
	pending := sc.sent && (sc.stream == nil || !sc.stream.done)
	switch {
	case sc.c.Broken() || !pending:
		return
	case !fired:
		sc.c.MarkBroken()
		_ = s.intr.killQuery(sc.target.Shard, sc.c, killReasonOf(err))
		return
	}
	nc := sc.c.Wire().NetConn()
	_ = nc.SetDeadline(time.Now().Add(scatterDrain))
	drainScatter(ctx, sc)
	if !sc.c.Broken() {
		_ = nc.SetDeadline(time.Time{})
	}
}

// executeScatter runs a prepared statement whose parameters send it to several shards: the
// values are written into the statement as literals, the shards run it as a text query,
// and the merged rows go to the client in the binary protocol.
func (s *Session) executeScatter(ctx context.Context, snap *rules.Snapshot, st *Stmt, params []wire.Param, w wire.PacketWriter) error {
	node, err := s.parseOne(st.orig)
	if err != nil {
		return err
	}
	if err := planner.BindParams(node, params); err != nil {
		return err
	}
	p, err := s.plan(snap, node, st.orig, nil)
	if err != nil {
		return err
	}
	sp, ok := p.(*plan.Scatter)
	if !ok {
		return sqlerr.New(sqlerr.ErUnknownError, "router: a prepared statement planned for several shards went to one once its parameters were bound")
	}
	return s.runScatterRead(ctx, snap, sp, s.preparedSplit(snap, st.replicaOK), false, w, true) // readretry.go
}

// drainScatter reads what is left of an interrupted shard's answer (its connection's
// deadline bounds the reads); a connection that fails to answer is marked broken.
func drainScatter(ctx context.Context, sc *scatterConn) {
	if sc.stream == nil {
		_, ncols, err := engine.ReadHeader(ctx, sc.c)
		if err != nil {
			if !sc.c.Broken() { // an ERR packet leaves the connection clean; an I/O error marked it broken
				sc.stream = &shardStream{done: true, status: sc.c.Status()}
			}
			return
		}
		sc.stream = &shardStream{ctx: ctx, c: sc.c, ncols: ncols}
	}
	for !sc.stream.done && !sc.c.Broken() {
		if _, err := sc.stream.Next(); err != nil {
			return
		}
	}
}
