package router

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/router/txn"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Atomic multi-shard writes (autocommit): the session acquires one connection per branch
// of the write (split.go) and hands the branches to the router's txn.Coordinator, which runs
// the commit protocol (router/txn: the coordinator's local transaction with its decision
// row as the commit point, the other branches prepared XA branches). Here each branch runs
// its statements as the session runs any (relay, found rows, warnings, insert ids), and the
// client gets one OK summing them. Inside an explicit transaction a write spanning shards
// is refused by the one-writer rule; one spanning tables of one shard runs under a savepoint.

// branchRun is a branch being executed on its connection: the txn.Branch the coordinator
// drives, and what its statements answered.
type branchRun struct {
	s     *Session
	b     plan.Branch
	c     Conn
	outs  []engine.Outcome
	ids   []uint64 // the LAST_INSERT_ID() each of outs leaves (0: unchanged), see insertid.go
	warns [][]*string
}

var _ txn.Branch = (*branchRun)(nil)

// Shard names the branch's shard.
func (r *branchRun) Shard() string { return r.b.Shard.Name }

// Conn is the branch's connection.
func (r *branchRun) Conn() engine.Conn { return r.c }

// Settled abandons what a LOAD DATA's part left unread (loadsplit.go).
func (r *branchRun) Settled() { settled(r.b) }

// Run runs the branch's statements.
func (r *branchRun) Run(ctx context.Context) error {
	for _, st := range r.b.Stmts {
		if err := r.stmt(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

// Exec runs a statement without a result set on the branch's connection; when ctx ends,
// the statement is killed and the error is the interruption's.
func (r *branchRun) Exec(ctx context.Context, sql string) error {
	ok, err := r.c.Exec(ctx, sql)
	switch {
	case err == nil:
		r.c.State().SetStatus(ok.Status)
	case ctx.Err() != nil:
		if r.c.State().Broken() {
			_ = r.s.intr.killQuery(r.b.Shard, r.c, killReason(ctx))
		}
		err = engine.InterruptedError(ctx)
	}
	return err
}

// stmt runs one statement of the branch on its connection (as text, or prepared with its
// own parameters) and fetches its warnings, if any. When ctx ends, the statement is killed
// and the error is the interruption's (relayOn).
func (r *branchRun) stmt(ctx context.Context, st plan.WriteStmt) error {
	out, warns, err := r.stmtOn(ctx, st)
	r.outs, r.warns = append(r.outs, out), append(r.warns, warns...)
	r.ids = append(r.ids, r.s.ids.generated(ctx, r.c, out, err))
	return err
}

// stmtOn runs st for stmt.
func (r *branchRun) stmtOn(ctx context.Context, st plan.WriteStmt) (out engine.Outcome, warns [][]*string, err error) {
	s, shard, c := r.s, r.b.Shard, r.c
	var w wire.PacketWriter = engine.Discard{}
	if f := s.info.foundRowsFor(s.branchRows, w); f != nil {
		w = f
		defer func() {
			if err == nil && f.found {
				out.Affected = f.n
			}
		}()
	}
	if part, ok := st.File.(*loadPart); ok {
		w = part.writer(w) // the file of a LOAD DATA LOCAL, its answer kept (loadsplit.go)
	}
	if st.Params == nil {
		out, err = s.intr.relayOn(ctx, shard, c, engine.ComQuery, []byte(st.SQL), false, false, w)
	} else {
		bs, ok := c.State().Stmt(engine.StmtKey(c, st.SQL))
		if !ok {
			it := s.intr.watchOnDone(ctx, shard, c)
			bs, err = engine.Prepare(ctx, c, st.SQL, nil)
			it.Stop()
		}
		switch {
		case err != nil:
		case bs.Params != len(st.Params):
			err = sqlerr.New(sqlerr.ErWrongArguments, "Incorrect arguments to mysqld_stmt_execute: the statement changed on the backend")
		default:
			out, err = s.intr.relayOn(ctx, shard, c, engine.ComStmtExecute, engine.ExecutePayload(bs.ID, st.Params), false, false, w)
		}
	}
	if err == nil && out.Warnings > 0 {
		warns, err = engine.QueryRows(ctx, c, "SHOW WARNINGS")
	}
	return out, warns, err
}

// execMulti runs a multi-shard write and answers the client with one OK.
func (s *Session) execMulti(ctx context.Context, snap *rules.Snapshot, p *plan.MultiWrite, more bool, w wire.PacketWriter) error {
	if s.inTransaction() {
		return s.execMultiInTxn(ctx, snap, p, more, w)
	}
	runs, err := s.runMulti(ctx, snap, p.Branches)
	if err != nil {
		s.diag.record(ctx, nil, engine.Outcome{}, err)
		return err
	}
	return s.answerMulti(p, runs, more, w)
}

// runMulti runs branches (autocommit), atomically, and gives back their connections.
func (s *Session) runMulti(ctx context.Context, snap *rules.Snapshot, branches []plan.Branch) ([]*branchRun, error) {
	runs := make([]*branchRun, len(branches))
	// Connections are taken in shard-name order, whatever the coordinator: two sessions
	// writing the same shards cannot each hold one pool's last connection while waiting
	// for the other's.
	order := make([]int, len(branches))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(branches[a].Shard.Name, branches[b].Shard.Name) })
	for _, i := range order {
		b := branches[i]
		c, err := s.acquire(ctx, snap, b.Shard)
		if err != nil {
			_ = s.releaseRuns(slices.DeleteFunc(runs, func(r *branchRun) bool { return r == nil }))
			return nil, err
		}
		runs[i] = &branchRun{s: s, b: b, c: c}
	}
	tb := make([]txn.Branch, len(runs))
	for i, r := range runs {
		tb[i] = r
	}
	err := s.r.xa.Commit(ctx, txn.Write{Gtrid: s.r.xa.Gtrid(branches[0].Shard.Name), Branches: tb, ConnID: s.info.ConnID})
	if ferr := s.releaseRuns(runs); ferr != nil {
		err = ferr
	}
	return runs, err
}

// releaseRuns gives back the branches' connections (kept when the session is sticky; the
// coordinator broke those it left inside a branch). It returns a fatal error when a
// connection holding session state was lost.
func (s *Session) releaseRuns(runs []*branchRun) error {
	var fatal error
	for _, r := range runs {
		var err error
		if r.c.State().Broken() {
			err = s.finish(r.b.Shard, r.c, engine.Outcome{}, engine.ErrBackendIO)
		} else {
			err = s.finish(r.b.Shard, r.c, engine.Outcome{Status: s.status}, nil)
		}
		if errors.Is(err, sqlerr.ErrFatal) && fatal == nil {
			fatal = err
		}
	}
	return fatal
}

// answerMulti writes the OK of a multi-shard write and records the session's diagnostics.
// A split INSERT reports the sum of affected rows and warnings, and as LAST_INSERT_ID the
// id generated for its first row that got one (on that row's shard: AUTO_INCREMENT counts
// per shard). A broadcast write reports its copy on the default shard.
func (s *Session) answerMulti(p *plan.MultiWrite, runs []*branchRun, more bool, w wire.PacketWriter) error {
	var ok wire.OK
	var warns [][]*string
	type firstID struct {
		row int
		id  uint64
	}
	var ids, gens []firstID
	for i, r := range runs {
		if p.Copies && i > 0 {
			if a, b := r.outs[0].Affected, runs[0].outs[0].Affected; a != b {
				s.r.log.Warn("copies of a broadcast table disagree: affected rows differ", "conn_id", s.info.ConnID,
					"shard", r.b.Shard.Name, "affected", a, "default_shard", runs[0].b.Shard.Name, "default_affected", b)
			}
			continue
		}
		for j, out := range r.outs {
			ok.AffectedRows += out.Affected
			ok.Warnings = satAdd(ok.Warnings, out.Warnings)
			if out.LastInsertID != 0 {
				ids = append(ids, firstID{r.b.Stmts[j].FirstRow, out.LastInsertID})
			}
			if r.ids[j] != 0 {
				gens = append(gens, firstID{r.b.Stmts[j].FirstRow, r.ids[j]})
			}
		}
		warns = append(warns, r.warns...)
	}
	first := func(a, b firstID) int { return a.row - b.row }
	if len(ids) > 0 {
		ok.LastInsertID = slices.MinFunc(ids, first).id
	}
	if len(gens) > 0 {
		s.ids.last = slices.MinFunc(gens, first).id
	}
	if !p.Diagnostic {
		s.diag.set(planner.Diagnostics{RowCount: int64(ok.AffectedRows), FoundRows: s.diag.last.FoundRows, Warnings: warns, Count: int(ok.Warnings)})
	}
	ok.Status = s.resultStatus(more)
	return w.WritePacket(wire.AppendOK(nil, ok))
}

func satAdd(a, b uint16) uint16 {
	if int(a)+int(b) > 0xffff {
		return 0xffff
	}
	return a + b
}

// execMultiInTxn runs a multi-shard write inside an explicit transaction: allowed only when
// every branch is on the one shard the transaction writes (a second writing shard is
// refused and the transaction rolled back, as for any write). Several statements run under
// a savepoint, so a failure undoes the whole statement, not the transaction.
func (s *Session) execMultiInTxn(ctx context.Context, snap *rules.Snapshot, p *plan.MultiWrite, more bool, w wire.PacketWriter) error {
	for _, b := range p.Branches {
		if err := s.checkWrite(ctx, b.Shard); err != nil {
			return err
		}
	}
	b := p.Branches[0]
	c, err := s.acquire(ctx, snap, b.Shard)
	if err != nil {
		return err
	}
	r := &branchRun{s: s, b: b, c: c}
	savepoint := len(b.Stmts) > 1
	if savepoint {
		err = r.Exec(ctx, "SAVEPOINT shardproxy_stmt")
	}
	if err == nil {
		err = r.Run(ctx)
	}
	if err != nil {
		if savepoint && !c.State().Broken() {
			if _, rerr := c.Exec(ctx, "ROLLBACK TO SAVEPOINT shardproxy_stmt"); rerr != nil {
				c.State().MarkBroken()
			}
		}
		s.diag.record(ctx, nil, engine.Outcome{}, err)
		return s.finish(b.Shard, c, engine.Outcome{Status: c.State().Status()}, err)
	}
	if err := s.finish(b.Shard, c, engine.Outcome{Status: c.State().Status()}, nil); err != nil {
		return err
	}
	return s.answerMulti(p, []*branchRun{r}, more, w)
}
