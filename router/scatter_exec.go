package router

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// runScatter sends each target its statement, merges the results and writes them to w
// (binary-protocol rows when bin is set, for a prepared statement).
func (s *Session) runScatter(ctx context.Context, snap *rules.Snapshot, sp *plan.Scatter, more bool, w wire.PacketWriter, bin bool) (err error) {
	targets := slices.Clone(sp.Targets)
	// A fixed acquisition order: two sessions never wait on each other's shards.
	slices.SortFunc(targets, func(a, b plan.Target) int { return strings.Compare(a.Shard.Name, b.Shard.Name) })
	conns := make([]*engine.ScatterConn, 0, len(targets))
	defer func() { err = s.endScatter(ctx, conns, err) }()
	if ctx.Err() != nil {
		return engine.InterruptedError(ctx)
	}
	for _, t := range targets {
		c, err := s.acquire(ctx, snap, t.Shard)
		if err != nil {
			return err
		}
		conns = append(conns, &engine.ScatterConn{Target: t, C: c, It: s.intr.interruptOnDone(ctx, t.Shard, c)})
	}
	g, err := engine.Gather(ctx, conns, sp.Merge, w, s.status, more, bin, snap.Server().MaxScatterGroups)
	if err != nil {
		return err
	}
	s.status = g.Status
	s.diag.set(planner.Diagnostics{RowCount: -1, FoundRows: g.Rows, Count: int(g.Warnings)})
	if g.Warnings > 0 {
		s.diag.last.Warnings = s.scatterWarnings(ctx, conns)
	}
	return nil
}

// scatterWarnings collects SHOW WARNINGS from the shards that reported some.
func (s *Session) scatterWarnings(ctx context.Context, conns []*engine.ScatterConn) [][]*string {
	var out [][]*string
	for _, sc := range conns {
		if sc.Stream.Warnings() == 0 || sc.C.State().Broken() {
			continue
		}
		if rows, err := engine.QueryRows(ctx, sc.C, "SHOW WARNINGS"); err == nil {
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
func (s *Session) endScatter(ctx context.Context, conns []*engine.ScatterConn, err error) error {
	interrupted := ctx.Err() != nil
	if !interrupted && isStatementError(err) && (s.sticky || s.inTransaction() || s.txnOpen()) {
		for _, sc := range conns {
			if sc.Pending() {
				engine.DrainScatter(ctx, sc)
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
				defer s.held.recovered(sc.C, &perr) // a panic breaks only this shard's connection
				s.drainInterrupted(ctx, sc, err)
			}()
		}
		wg.Wait()
	}
	var fatal error
	for _, sc := range conns {
		if !interrupted {
			kill := false
			if sc.Pending() {
				sc.C.State().MarkBroken()
				kill = true
			}
			if fired := sc.It.Stop(); !fired && kill {
				_ = s.intr.killQuery(sc.Target.Shard, sc.C, killReasonOf(err))
			}
		}
		cerr := sc.Err
		if cerr == nil && err != nil && sc.C.State().Broken() {
			cerr = err
		}
		out := engine.Outcome{Status: s.status}
		if sc.Stream != nil && sc.Stream.Done() {
			out.Status = sc.Stream.Status()
		}
		if ferr := s.finish(sc.Target.Shard, sc.C, out, cerr); ferr != nil && errors.Is(ferr, sqlerr.ErrFatal) {
			fatal = ferr
		}
	}
	if fatal != nil {
		return fatal
	}
	s.rollbackOnDeadlock(err)
	if interrupted && err != nil {
		return engine.InterruptedError(ctx)
	}
	return err
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
func (s *Session) drainInterrupted(ctx context.Context, sc *engine.ScatterConn, err error) {
	fired := sc.It.Stop()
	pending := sc.Sent && (sc.Stream == nil || !sc.Stream.Done())
	switch {
	case sc.C.State().Broken() || !pending:
		return
	case !fired:
		sc.C.State().MarkBroken()
		_ = s.intr.killQuery(sc.Target.Shard, sc.C, killReasonOf(err))
		return
	}
	engine.Drain(sc.C, scatterDrain, func() { engine.DrainScatter(ctx, sc) })
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
	return s.runScatterRead(ctx, snap, sp, s.readView().PreparedSplit(snap, st.replicaOK), false, w, true) // readretry.go
}
