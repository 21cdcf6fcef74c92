package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/infile"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// LOAD DATA LOCAL INFILE into a table spread over several shards: every shard holding a
// copy of the table (each slot's, for a sharded table) runs its own LOAD DATA LOCAL as a
// branch of an atomic multi-shard write (xa.go), and the proxy is the file's sender to each:
//
//	client ──file──▶ feeder goroutine ──rows of slot k──▶ part k ──▶ branch k's LOAD DATA
//
// One goroutine (the feeder) reads the client's file packet by packet. For a sharded table
// it reads the rows as MariaDB would (router/infile) and appends each row's bytes to the
// part of the shard its key names; for a broadcast table it gives every part every packet.
// A part is a small queue (loadQueue packets of at most loadChunk bytes): memory stays
// bounded whatever the file's size, and a slow shard slows the whole load down.
//
// The branches commit all or none. When the file cannot be split (a row whose key has no
// slot, a row too long) or the client goes away, every part fails: each branch's backend
// connection is broken off mid-file, so its server rolls the statement back; nothing was
// prepared (a branch prepares only after its file ended). The rest of a file the proxy
// stopped using is still read, so that the client connection stays in step.

const (
	loadChunk  = 64 << 10 // bytes of one file packet sent to a shard
	loadQueue  = 4        // packets queued for a shard before the feeder waits
	maxLoadRow = 16 << 20 // the longest row of a file split by shard key
)

// errLoadAbandoned is what the feeder stops with when a shard's branch ended without
// reading its whole part: the branch's own error is the statement's.
var errLoadAbandoned = errors.New("router: a shard's part of the file was abandoned")

// loadRun is one LOAD DATA LOCAL spread over shards.
type loadRun struct {
	ctx    context.Context
	spec   *loadSpec // nil for a broadcast table: every part gets the whole file
	parts  []*loadPart
	bySlot map[int]*loadPart

	failed     chan struct{} // closed (once err is set) when the file cannot be delivered
	err        error
	finished   chan struct{} // closed when the branches are over
	finishOnce sync.Once

	srcDone   bool  // the client's file ended (or its connection failed)
	clientErr error // reading the client's file failed
}

// loadPart is one shard's part of the file: the engine reads it as the client's file
// (engine.ClientFile) while relaying that shard's LOAD DATA LOCAL.
type loadPart struct {
	run       *loadRun
	ch        chan []byte
	pending   []byte // rows not yet sent (feeder only)
	abandoned chan struct{}
	once      sync.Once
	ok        wire.OK // the shard's answer
	answered  bool
}

func newLoadRun(ctx context.Context, spec *loadSpec) *loadRun {
	return &loadRun{ctx: ctx, spec: spec, bySlot: map[int]*loadPart{}, failed: make(chan struct{}), finished: make(chan struct{})}
}

func (l *loadRun) addPart() *loadPart {
	p := &loadPart{run: l, ch: make(chan []byte, loadQueue), abandoned: make(chan struct{})}
	l.parts = append(l.parts, p)
	return p
}

// ReadFilePacket gives the shard the next packet of its part; an empty one ends it.
func (p *loadPart) ReadFilePacket() ([]byte, error) {
	select {
	case b := <-p.ch:
		return b, nil
	case <-p.run.failed:
		return nil, p.run.err
	case <-p.run.ctx.Done():
		return nil, engine.InterruptedError(p.run.ctx)
	}
}

// writer is the PacketWriter a branch's LOAD DATA answers to: it hands the engine this part
// as the file, drops the shard's LOCAL INFILE request (the proxy made the client's) and
// keeps the shard's OK.
func (p *loadPart) writer(w wire.PacketWriter) wire.PacketWriter { return &loadPartWriter{w: w, p: p} }

type loadPartWriter struct {
	w wire.PacketWriter
	p *loadPart
}

func (x *loadPartWriter) ClientFile() (engine.ClientFile, bool) { return x.p, true }

func (x *loadPartWriter) WritePacket(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == infileHeader:
		return nil
	case len(b) > 0 && b[0] == 0x00:
		ok, err := wire.ParseOK(b)
		if err != nil {
			return err
		}
		x.p.ok, x.p.answered = ok, true
	}
	return x.w.WritePacket(b)
}

// infileHeader starts a LOCAL INFILE request.
const infileHeader = 0xfb

// abandon tells the feeder that nobody reads the part any more.
func (p *loadPart) abandon() { p.once.Do(func() { close(p.abandoned) }) }

// settled is called when a branch has run (txn.Branch.Settled): a LOAD DATA's part that was not read
// to its end is abandoned.
func settled(b plan.Branch) {
	for _, st := range b.Stmts {
		if p, ok := st.File.(*loadPart); ok {
			p.abandon()
		}
	}
}

// send queues packet b for the shard.
func (p *loadPart) send(b []byte) error {
	l := p.run
	select {
	case p.ch <- b:
		return nil
	case <-p.abandoned:
		return errLoadAbandoned
	case <-l.finished:
		return errLoadAbandoned
	case <-l.ctx.Done():
		return engine.InterruptedError(l.ctx)
	}
}

// add appends a row's bytes to the part, sending full packets.
func (p *loadPart) add(raw []byte) error {
	for len(raw) > 0 {
		if p.pending == nil {
			p.pending = make([]byte, 0, loadChunk)
		}
		k := min(len(raw), loadChunk-len(p.pending))
		p.pending, raw = append(p.pending, raw[:k]...), raw[k:]
		if len(p.pending) == loadChunk {
			if err := p.send(p.pending); err != nil {
				return err
			}
			p.pending = nil
		}
	}
	return nil
}

// end sends what is left of the part and the empty packet that ends it.
func (p *loadPart) end() error {
	if len(p.pending) > 0 {
		if err := p.send(p.pending); err != nil {
			return err
		}
		p.pending = nil
	}
	return p.send([]byte{})
}

// read is the feeder's source: the client's next file packet.
func (l *loadRun) read(file engine.ClientFile) infile.Source {
	return func() ([]byte, error) {
		if l.srcDone {
			return nil, l.clientErr
		}
		b, err := file.ReadFilePacket()
		if err != nil {
			l.srcDone, l.clientErr = true, err
			return nil, err
		}
		if len(b) == 0 {
			l.srcDone = true
		}
		return b, nil
	}
}

// feed reads the client's whole file into the parts. On failure every part fails with the
// error and the rest of the file is read and dropped (unless the client itself failed).
func (l *loadRun) feed(file engine.ClientFile) (err error) {
	src := l.read(file)
	defer func() {
		if v := recover(); v != nil {
			err = errPanicked(v)
		}
		if err == nil {
			return
		}
		l.err = err
		close(l.failed)
		for !l.srcDone {
			_, _ = src()
		}
		if l.clientErr != nil {
			err = l.clientErr
		}
	}()
	if l.spec == nil {
		err = l.copyAll(src)
	} else {
		err = l.split(src)
	}
	if err != nil {
		return err
	}
	for _, p := range l.parts {
		if err := p.end(); err != nil {
			return err
		}
	}
	return nil
}

// copyAll gives every part the whole file (a broadcast table).
func (l *loadRun) copyAll(src infile.Source) error {
	for {
		b, err := src()
		if err != nil || len(b) == 0 {
			return err
		}
		b = bytes.Clone(b) // shared, read-only, by every part
		for _, p := range l.parts {
			if err := p.send(b); err != nil {
				return err
			}
		}
	}
}

// split gives each row of the file to the part of its key's slot (a sharded table).
func (l *loadRun) split(src infile.Source) error {
	sp := l.spec
	r := infile.NewReader(sp.format, src, maxLoadRow)
	if err := r.SkipLines(sp.ignore); err != nil {
		return err
	}
	for {
		row, ok, err := r.Next(sp.fields, sp.key)
		switch {
		case errors.Is(err, infile.ErrRowTooLong):
			return sqlerr.NotSupported("LOAD DATA LOCAL INFILE into sharded table %s with a row longer than %d bytes (row %d)", sp.table.Name, maxLoadRow, r.Rows()+1)
		case err != nil:
			return err
		case !ok:
			return nil
		}
		slot, err := sp.slot(row)
		if err != nil {
			return err
		}
		if err := l.bySlot[slot].add(row.Raw); err != nil {
			return err
		}
	}
}

// finish tells the feeder the branches are over.
func (l *loadRun) finish() { l.finishOnce.Do(func() { close(l.finished) }) }

// loadSpread runs LOAD DATA LOCAL INFILE into sharded or broadcast table t.
// Everything that can refuse the statement does so before the client is asked for its file.
func (s *Session) loadSpread(ctx context.Context, snap *rules.Snapshot, t *rules.Table, n *ast.LoadDataStmt, text string, file engine.ClientFile, more bool, w wire.PacketWriter) error {
	pl := s.planner(snap)
	if err := pl.CheckLoad(snap, n); err != nil {
		return err
	}
	places, err := loadPlaces(t)
	if err != nil {
		return err
	}
	var spec *loadSpec
	if t.Kind == rules.KindSharded {
		if spec, err = s.loadSpecOf(ctx, snap, t, n); err != nil {
			return err
		}
		n.IgnoreLines, n.Charset = nil, &spec.charset // the proxy skips the lines; every shard reads alike
	}
	l := newLoadRun(ctx, spec)
	defer l.finish() // (already done on a normal return) a panic must not leave the feeder waiting
	branches := make([]plan.Branch, 0, len(places))
	for _, p := range places {
		n.Table.Schema, n.Table.Name = ast.NewCIStr(p.Shard.Database), ast.NewCIStr(p.Table)
		sql, err := pl.Restore(n)
		if err != nil {
			return err
		}
		part := l.addPart()
		if p.Slot >= 0 {
			for slot := range t.Scheme.Func.Slots() {
				if t.Scheme.SlotShard(slot) == p.Shard {
					l.bySlot[slot] = part
				}
			}
		}
		branches = append(branches, plan.Branch{Shard: p.Shard, Stmts: []plan.WriteStmt{{SQL: keepDuplicateHandling(n, text, sql), File: part}}})
	}
	if s.inTransaction() {
		for _, b := range branches {
			if err := s.checkWrite(ctx, b.Shard); err != nil {
				return err
			}
		}
	}
	// Ask the client for its file once, as the one server it talks to.
	if err := w.WritePacket(append([]byte{infileHeader}, n.Path...)); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- l.feed(file) }() // owned: waited for below
	var runs []*branchRun
	if s.inTransaction() {
		runs, err = s.loadInTxn(ctx, snap, branches[0])
	} else {
		runs, err = s.runMulti(ctx, snap, branches)
	}
	l.finish()
	ferr := <-done
	switch {
	case l.clientErr != nil:
		err = l.clientErr // the client connection is closed
	case ferr != nil && !errors.Is(ferr, errLoadAbandoned):
		err = ferr // the file could not be split, or the statement was interrupted
	}
	if err != nil {
		s.diag.record(ctx, nil, engine.Outcome{}, err)
		return lostWrite(err)
	}
	return s.answerLoad(t.Kind == rules.KindBroadcast, runs, more, w)
}

// loadPlaces lists the copies a LOAD DATA into t writes, the default shard's first (it
// coordinates); a sharded table must have one copy per shard (one connection loads one
// table at a time, and all of a shard's rows stream at once).
func loadPlaces(t *rules.Table) ([]rules.Placement, error) {
	ps := t.Placements()
	first := planner.FirstCopy(t)
	out := []rules.Placement{first}
	seen := map[*rules.Shard]bool{first.Shard: true}
	for _, p := range ps {
		if p == first {
			continue
		}
		if seen[p.Shard] {
			return nil, sqlerr.NotSupported("LOAD DATA LOCAL INFILE into sharded table %s with several slot tables on shard %s (each shard's rows are loaded by one statement)", t.Name, p.Shard.Name)
		}
		seen[p.Shard] = true
		out = append(out, p)
	}
	return out, nil
}

// loadInTxn runs a LOAD DATA inside the client's transaction: checkWrite allowed only one
// shard, so the one branch runs on the transaction's connection.
func (s *Session) loadInTxn(ctx context.Context, snap *rules.Snapshot, b plan.Branch) ([]*branchRun, error) {
	defer settled(b)
	c, err := s.acquire(ctx, snap, b.Shard)
	if err != nil {
		return nil, err
	}
	r := &branchRun{s: s, b: b, c: c}
	err = r.stmt(ctx, b.Stmts[0])
	return []*branchRun{r}, s.finish(b.Shard, c, engine.Outcome{Status: c.State().Status()}, err)
}

// answerLoad writes the OK of a LOAD DATA spread over shards: a sharded table's counts
// summed over its shards, a broadcast table's those of its default shard's copy, in
// MariaDB's words ("Records: 3  Deleted: 0  Skipped: 0  Warnings: 0").
func (s *Session) answerLoad(copies bool, runs []*branchRun, more bool, w wire.PacketWriter) error {
	var ok wire.OK
	var warns [][]*string
	var records, deleted, skipped, warned uint64
	for i, r := range runs {
		if copies && i > 0 {
			continue
		}
		p := r.b.Stmts[0].File.(*loadPart) // loadSpread made the branches
		ok.AffectedRows += p.ok.AffectedRows
		ok.Warnings = satAdd(ok.Warnings, p.ok.Warnings)
		var a, b, c, d uint64
		if _, err := fmt.Sscanf(p.ok.Info, loadInfo, &a, &b, &c, &d); err == nil {
			records, deleted, skipped, warned = records+a, deleted+b, skipped+c, warned+d
		}
		warns = append(warns, r.warns...)
	}
	ok.Info = fmt.Sprintf(loadInfo, records, deleted, skipped, warned)
	s.diag.set(planner.Diagnostics{RowCount: int64(ok.AffectedRows), FoundRows: s.diag.last.FoundRows, Warnings: warns, Count: int(ok.Warnings)})
	ok.Status = s.resultStatus(more)
	return w.WritePacket(wire.AppendOK(nil, ok))
}

// loadInfo is MariaDB's info text of a LOAD DATA's OK (ER_LOAD_INFO).
const loadInfo = "Records: %d  Deleted: %d  Skipped: %d  Warnings: %d"
