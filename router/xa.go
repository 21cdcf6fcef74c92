package router

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Atomic multi-shard writes (autocommit). The branches of a write (split.go) run in
// parallel, one backend connection each:
//
//	coordinator (first branch)          every other branch (participant)
//	START TRANSACTION                   XA START 'gtrid','shard'
//	the branch's statements             the branch's statements
//	INSERT the commit decision          XA END; XA PREPARE
//	             ── all succeeded? ──
//	COMMIT  (this is the decision)
//	                                    XA COMMIT
//
// The coordinator's local transaction is the commit point: its decision row
// (shardproxy.xa_decisions on the coordinator's server) becomes durable exactly when its
// own changes do. A failure before it rolls everything back (ROLLBACK, XA ROLLBACK) and the
// client gets the failing shard's error. A crash before it leaves prepared participants and
// no decision row: recovery rolls them back. A crash after it leaves prepared participants
// and a decision row: recovery commits them (recover.go). A write on one shard needs no XA:
// several statements on one shard run in a plain transaction.

// Decision log: a table of the proxy's own schema on each backend server holding a
// coordinator shard. Recovery inserts an 'abort' row for a transaction it finds undecided,
// so that a coordinator still running can no longer commit (its own insert collides).
const (
	DecisionSchema = "shardproxy"
	DecisionTable  = DecisionSchema + ".xa_decisions"
	xaPrefix       = "shardproxy:"
	// commitTimeout bounds the commit (or rollback) phase, which runs even when the client's
	// statement is cancelled: once prepared, a write is finished rather than abandoned.
	commitTimeout = 30 * time.Second
)

// DecisionDDL returns the statements creating the decision log (idempotent).
func DecisionDDL() []string {
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + DecisionSchema,
		"CREATE TABLE IF NOT EXISTS " + DecisionTable + ` (
  gtrid VARBINARY(64) NOT NULL PRIMARY KEY,
  decision ENUM('commit','abort') NOT NULL,
  created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB`,
	}
}

// Outcomes of multi-shard (XA) writes, the label values of XAMetrics.XATransaction.
const (
	XACommitted  = "committed"   // the decision was made (participants committed, or left to recovery)
	XARolledBack = "rolled_back" // a branch failed before the decision: nothing committed
	XAUnknown    = "unknown"     // the coordinator was lost during its COMMIT: recovery settles it
)

// XAMetrics counts multi-shard commits and recoveries. Implementations must be safe for
// concurrent use.
type XAMetrics interface {
	// XATransaction counts a write spanning shards by its outcome.
	XATransaction(outcome string)
	// XARecovered counts a prepared branch recovery resolved, by decision ("commit" or
	// "abort").
	XARecovered(decision string)
}

type noXAMetrics struct{}

func (noXAMetrics) XATransaction(string) {}
func (noXAMetrics) XARecovered(string)   {}

// xid is an XA transaction branch id.
type xid struct{ gtrid, bqual string }

func (x xid) String() string { return fmt.Sprintf("X'%x',X'%x'", x.gtrid, x.bqual) }

// newGtrid names a new multi-shard transaction: the proxy's prefix, this proxy's instance
// id, the time (unix ms, to judge the age of an orphan), a sequence number, and a tag of the
// coordinator shard (where recovery finds the decision). At most 57 bytes (XA allows 64).
func (r *Router) newGtrid(coord *rules.Shard) string {
	return fmt.Sprintf("%s%08x:%x:%x:%s", xaPrefix, r.instance, time.Now().UnixMilli(), r.xaSeq.Add(1), shardTag(coord.Name))
}

// shardTag is a short fixed-size tag of a shard name.
func shardTag(name string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return fmt.Sprintf("%08x", h.Sum32())
}

// branchQual is a participant branch's bqual: its shard's name (a tag when too long).
func branchQual(shard string) string {
	if len(shard) <= 64 {
		return shard
	}
	return shardTag(shard)
}

// parseGtrid returns a proxy gtrid's creation time and coordinator tag.
func parseGtrid(g string) (created time.Time, coordTag string, ok bool) {
	rest, found := strings.CutPrefix(g, xaPrefix)
	if !found {
		return time.Time{}, "", false
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 4 {
		return time.Time{}, "", false
	}
	ms, err := strconv.ParseInt(parts[1], 16, 64)
	if err != nil {
		return time.Time{}, "", false
	}
	return time.UnixMilli(ms), parts[3], true
}

// branchRun is a branch being executed on its connection.
type branchRun struct {
	b     branch
	c     Conn
	coord bool
	xid   xid
	state int // xaNone, xaStarted, xaPrepared
	outs  []engine.Outcome
	ids   []uint64 // the LAST_INSERT_ID() each of outs leaves (0: unchanged), see insertid.go
	warns [][]*string
}

const (
	xaNone = iota
	xaStarted
	xaPrepared
)

// execMulti runs a multi-shard write and answers the client with one OK.
func (s *Session) execMulti(ctx context.Context, snap *rules.Snapshot, p plan, more bool, w wire.PacketWriter) error {
	if s.inTransaction() {
		return s.execMultiInTxn(ctx, snap, p, more, w)
	}
	runs, err := s.runMulti(ctx, snap, p.branches)
	if err != nil {
		s.diag.record(ctx, nil, engine.Outcome{}, err)
		return err
	}
	return s.answerMulti(p, runs, more, w)
}

// runMulti runs branches (autocommit), atomically, and gives back their connections.
func (s *Session) runMulti(ctx context.Context, snap *rules.Snapshot, branches []branch) ([]*branchRun, error) {
	gtrid := s.r.newGtrid(branches[0].shard)
	runs := make([]*branchRun, len(branches))
	// Connections are taken in shard-name order, whatever the coordinator: two sessions
	// writing the same shards cannot each hold one pool's last connection while waiting
	// for the other's.
	order := make([]int, len(branches))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(branches[a].shard.Name, branches[b].shard.Name) })
	for _, i := range order {
		b := branches[i]
		c, err := s.acquire(ctx, snap, b.shard)
		if err != nil {
			_ = s.releaseRuns(slices.DeleteFunc(runs, func(r *branchRun) bool { return r == nil }))
			return nil, err
		}
		runs[i] = &branchRun{b: b, c: c, coord: i == 0, xid: xid{gtrid, branchQual(b.shard.Name)}}
	}
	err := s.commitBranches(ctx, snap, runs, gtrid)
	if ferr := s.releaseRuns(runs); ferr != nil {
		err = ferr
	}
	return runs, err
}

// commitBranches runs every branch and commits them all or none.
func (s *Session) commitBranches(ctx context.Context, snap *rules.Snapshot, runs []*branchRun, gtrid string) error {
	multi := len(runs) > 1
	errs := s.parallel(runs, func(r *branchRun) error { return s.runBranch(ctx, snap, r, gtrid, multi) })
	if err := firstError(errs); err != nil {
		s.abortBranches(ctx, runs)
		s.countXA(multi, XARolledBack)
		return err
	}
	if multi {
		s.r.xaHook("prepared")
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	coord := runs[0]
	ok, err := coord.c.Exec(cctx, "COMMIT")
	if err != nil {
		if coord.c.Broken() && multi {
			// The decision may or may not be durable: leave the prepared branches to recovery.
			for _, r := range runs[1:] {
				r.c.MarkBroken()
			}
			s.r.log.Warn("multi-shard commit outcome unknown; recovery will finish it", "conn_id", s.info.ConnID, "gtrid", gtrid, "shard", coord.b.shard.Name, "err", err)
			s.countXA(multi, XAUnknown)
			return sqlerr.Lost(fmt.Errorf("%w: %w", engine.ErrBackendIO, sqlerr.New(sqlerr.ErConnLost,
				"Lost connection to shard %s while committing a write spanning shards (xid %q): it is either committed on every shard or on none, as recovery will settle", coord.b.shard.Name, gtrid)))
		}
		s.abortBranches(ctx, runs)
		s.countXA(multi, XARolledBack)
		if coord.c.Broken() {
			// One shard's local transaction: its COMMIT may or may not have happened.
			return sqlerr.Lost(err)
		}
		return err
	}
	coord.c.SetStatus(ok.Status)
	coord.state = xaNone
	if !multi {
		return nil
	}
	s.countXA(multi, XACommitted)
	s.r.xaHook("committed")
	s.parallel(runs[1:], func(r *branchRun) error {
		ok, err := r.c.Exec(cctx, "XA COMMIT "+r.xid.String())
		if err != nil {
			// Decided: recovery commits the branch once this connection is gone.
			r.c.MarkBroken()
			s.r.log.Warn("XA COMMIT failed after the commit decision; recovery will commit the branch", "conn_id", s.info.ConnID, "gtrid", gtrid, "shard", r.b.shard.Name, "err", err)
			return nil
		}
		r.c.SetStatus(ok.Status)
		r.state = xaNone
		return nil
	})
	return nil
}

// countXA counts the outcome of a write spanning shards (multi); one-shard writes need no XA
// and are not counted.
func (s *Session) countXA(multi bool, outcome string) {
	if multi {
		s.r.xaStats.XATransaction(outcome)
	}
}

// runBranch runs one branch up to its commit point: the coordinator's statements and
// decision row inside a local transaction, a participant's statements in a prepared XA
// branch. multi says whether there are participants.
func (s *Session) runBranch(ctx context.Context, snap *rules.Snapshot, r *branchRun, gtrid string, multi bool) error {
	defer r.b.settled() // loadsplit.go
	begin := "START TRANSACTION"
	if !r.coord {
		begin = "XA START " + r.xid.String()
	}
	if _, err := s.branchExec(ctx, snap, r, begin); err != nil {
		return err
	}
	r.state = xaStarted
	for _, st := range r.b.stmts {
		if err := s.branchStmt(ctx, r, st); err != nil {
			return err
		}
	}
	if r.coord {
		if multi {
			_, err := s.branchExec(ctx, snap, r, fmt.Sprintf("INSERT INTO %s (gtrid, decision) VALUES (X'%x', 'commit')", DecisionTable, gtrid))
			return err
		}
		return nil
	}
	if _, err := s.branchExec(ctx, snap, r, "XA END "+r.xid.String()); err != nil {
		return err
	}
	if _, err := s.branchExec(ctx, snap, r, "XA PREPARE "+r.xid.String()); err != nil {
		return err
	}
	r.state = xaPrepared
	return nil
}

// branchExec runs a statement without a result set on a branch's connection.
func (s *Session) branchExec(ctx context.Context, snap *rules.Snapshot, r *branchRun, sql string) (wire.OK, error) {
	ok, err := r.c.Exec(ctx, sql)
	switch {
	case err == nil:
		r.c.SetStatus(ok.Status)
	case ctx.Err() != nil:
		if r.c.Broken() {
			_ = s.intr.killQuery(r.b.shard, r.c, killReason(ctx))
		}
		err = interruptedError(ctx)
	}
	return ok, err
}

// branchStmt runs one statement of a branch on c (as text, or prepared with its own
// parameters) and fetches its warnings, if any. When ctx ends, the statement is killed and
// the error is the interruption's (relayOn).
func (s *Session) branchStmt(ctx context.Context, r *branchRun, st branchStmt) error {
	out, warns, err := s.branchStmtOn(ctx, r.b.shard, r.c, st)
	r.outs, r.warns = append(r.outs, out), append(r.warns, warns...)
	r.ids = append(r.ids, s.ids.generated(ctx, r.c, out, err))
	return err
}

// branchStmtOn runs st on c for branchStmt.
func (s *Session) branchStmtOn(ctx context.Context, shard *rules.Shard, c Conn, st branchStmt) (out engine.Outcome, warns [][]*string, err error) {
	var w wire.PacketWriter = engine.Discard{}
	if f := s.foundRowsFor(s.branchRows, w); f != nil {
		w = f
		defer func() {
			if err == nil && f.found {
				out.Affected = f.n
			}
		}()
	}
	if st.load != nil {
		w = st.load.writer(w) // the file of a LOAD DATA LOCAL, its answer kept (loadsplit.go)
	}
	if st.params == nil {
		out, err = s.intr.relayOn(ctx, shard, c, engine.ComQuery, []byte(st.sql), false, false, w)
	} else {
		bs, ok := c.Stmt(engine.StmtKey(c, st.sql))
		if !ok {
			it := s.intr.watchOnDone(ctx, shard, c)
			bs, err = engine.Prepare(ctx, c, st.sql, nil)
			it.Stop()
		}
		switch {
		case err != nil:
		case bs.Params != len(st.params):
			err = sqlerr.New(sqlerr.ErWrongArguments, "Incorrect arguments to mysqld_stmt_execute: the statement changed on the backend")
		default:
			out, err = s.intr.relayOn(ctx, shard, c, engine.ComStmtExecute, engine.ExecutePayload(bs.ID, st.params), false, false, w)
		}
	}
	if err == nil && out.Warnings > 0 {
		warns, err = engine.QueryRows(ctx, c, "SHOW WARNINGS")
	}
	return out, warns, err
}

// abortBranches rolls back every branch that started; a connection whose branch could not
// be rolled back is closed (the server rolls back an unprepared branch on disconnect;
// recovery rolls back a prepared one, which has no commit decision).
func (s *Session) abortBranches(ctx context.Context, runs []*branchRun) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	s.parallel(runs, func(r *branchRun) error {
		if r.state == xaNone || r.c.Broken() {
			return nil
		}
		if r.coord {
			if ok, err := r.c.Exec(rctx, "ROLLBACK"); err != nil {
				r.c.MarkBroken()
			} else {
				r.c.SetStatus(ok.Status)
				r.state = xaNone
			}
			return nil
		}
		if r.state == xaStarted {
			_, _ = r.c.Exec(rctx, "XA END "+r.xid.String()) // fails when already ended or rolled back
		}
		ok, err := r.c.Exec(rctx, "XA ROLLBACK "+r.xid.String())
		if err != nil && !xaGone(err) {
			r.c.MarkBroken()
			s.r.log.Warn("XA ROLLBACK failed; closing the connection", "conn_id", s.info.ConnID, "shard", r.b.shard.Name, "err", err)
			return nil
		}
		if err == nil {
			r.c.SetStatus(ok.Status)
		}
		r.state = xaNone
		return nil
	})
}

// xaGone reports an XA error meaning the branch no longer exists (unknown xid, or rolled
// back already: ER_XAER_NOTA, ER_XA_RBROLLBACK, ER_XA_RBTIMEOUT, ER_XA_RBDEADLOCK).
func xaGone(err error) bool {
	e, ok := sqlerr.As(err)
	return ok && (e.Code == 1397 || e.Code == 1402 || e.Code == 1613 || e.Code == 1614)
}

// releaseRuns gives back the branches' connections (kept when the session is sticky). It
// returns a fatal error when a connection holding session state was lost.
func (s *Session) releaseRuns(runs []*branchRun) error {
	var fatal error
	for _, r := range runs {
		if r.state != xaNone && !r.c.Broken() {
			r.c.MarkBroken() // never hand out a connection still inside a branch
		}
		var err error
		if r.c.Broken() {
			err = s.finish(r.b.shard, r.c, engine.Outcome{}, engine.ErrBackendIO)
		} else {
			err = s.finish(r.b.shard, r.c, engine.Outcome{Status: s.status}, nil)
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
func (s *Session) answerMulti(p plan, runs []*branchRun, more bool, w wire.PacketWriter) error {
	var ok wire.OK
	var warns [][]*string
	type firstID struct {
		row int
		id  uint64
	}
	var ids, gens []firstID
	for i, r := range runs {
		if p.copies && i > 0 {
			if a, b := r.outs[0].Affected, runs[0].outs[0].Affected; a != b {
				s.r.log.Warn("copies of a broadcast table disagree: affected rows differ", "conn_id", s.info.ConnID,
					"shard", r.b.shard.Name, "affected", a, "default_shard", runs[0].b.shard.Name, "default_affected", b)
			}
			continue
		}
		for j, out := range r.outs {
			ok.AffectedRows += out.Affected
			ok.Warnings = satAdd(ok.Warnings, out.Warnings)
			if out.LastInsertID != 0 {
				ids = append(ids, firstID{r.b.stmts[j].firstRow, out.LastInsertID})
			}
			if r.ids[j] != 0 {
				gens = append(gens, firstID{r.b.stmts[j].firstRow, r.ids[j]})
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
	if !p.diagnostic {
		s.diag.set(diagnostics{rowCount: int64(ok.AffectedRows), foundRows: s.diag.last.foundRows, warnings: warns, count: int(ok.Warnings)})
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
func (s *Session) execMultiInTxn(ctx context.Context, snap *rules.Snapshot, p plan, more bool, w wire.PacketWriter) error {
	for _, b := range p.branches {
		if err := s.checkWrite(ctx, b.shard); err != nil {
			return err
		}
	}
	b := p.branches[0]
	c, err := s.acquire(ctx, snap, b.shard)
	if err != nil {
		return err
	}
	r := &branchRun{b: b, c: c, coord: true}
	savepoint := len(b.stmts) > 1
	if savepoint {
		_, err = s.branchExec(ctx, snap, r, "SAVEPOINT shardproxy_stmt")
	}
	for _, st := range b.stmts {
		if err != nil {
			break
		}
		err = s.branchStmt(ctx, r, st)
	}
	if err != nil {
		if savepoint && !c.Broken() {
			if _, rerr := c.Exec(ctx, "ROLLBACK TO SAVEPOINT shardproxy_stmt"); rerr != nil {
				c.MarkBroken()
			}
		}
		s.diag.record(ctx, nil, engine.Outcome{}, err)
		return s.finish(b.shard, c, engine.Outcome{Status: c.Status()}, err)
	}
	if err := s.finish(b.shard, c, engine.Outcome{Status: c.Status()}, nil); err != nil {
		return err
	}
	return s.answerMulti(p, []*branchRun{r}, more, w)
}

// parallel runs f for each branch in its own goroutine and waits for all; the errors are in
// the branches' order. A panic in f fails only its branch, whose connection is marked broken.
func (s *Session) parallel(runs []*branchRun, f func(*branchRun) error) []error {
	errs := make([]error, len(runs))
	run := func(i int, r *branchRun) {
		defer s.held.recovered(r.c, &errs[i])
		errs[i] = f(r)
	}
	if len(runs) == 1 {
		run(0, runs[0])
		return errs
	}
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Go(func() { run(i, r) })
	}
	wg.Wait()
	return errs
}

// firstError returns the first MySQL error of errs (a shard's own answer, say a duplicate
// key), else the first error.
func firstError(errs []error) error {
	for _, err := range errs {
		if _, ok := sqlerr.As(err); ok && !errors.Is(err, engine.ErrBackendIO) {
			return err
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
