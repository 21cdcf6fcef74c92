package txn

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// Atomic multi-shard writes (autocommit). The branches of a write run in parallel, one
// backend connection each:
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

// decisionInsert is the coordinator's commit decision for gtrid, written in its local
// transaction.
func decisionInsert(gtrid string) string {
	return fmt.Sprintf("INSERT INTO %s (gtrid, decision) VALUES (X'%x', 'commit')", DecisionTable, gtrid)
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

// xaGone reports an XA error meaning the branch no longer exists (unknown xid, or rolled
// back already: ER_XAER_NOTA, ER_XA_RBROLLBACK, ER_XA_RBTIMEOUT, ER_XA_RBDEADLOCK).
func xaGone(err error) bool {
	e, ok := sqlerr.As(err)
	return ok && (e.Code == 1397 || e.Code == 1402 || e.Code == 1613 || e.Code == 1614)
}

// Branch is one shard's part of a write spanning shards, on the backend connection the
// session acquired for it. The coordinator calls its methods from the branch's own
// goroutine, one branch per goroutine.
type Branch interface {
	// Shard names the branch's shard (logs, errors, the participant's bqual).
	Shard() string
	// Conn is the branch's connection; the coordinator runs XA COMMIT and the rollbacks on
	// it directly, and marks it broken when it must not be reused.
	Conn() engine.Conn
	// Exec runs a statement of the protocol (START TRANSACTION, XA START/END/PREPARE, the
	// decision row) on Conn; when ctx ends, the statement is killed and the error is the
	// interruption's.
	Exec(ctx context.Context, sql string) error
	// Run runs the branch's own statements, keeping their outcomes and warnings for the
	// client's answer.
	Run(ctx context.Context) error
	// Settled is called once the branch ran up to its commit point, or failed before it.
	Settled()
}

// CoordinatorOptions configures a Coordinator.
type CoordinatorOptions struct {
	// Metrics counts outcomes; nil counts nothing.
	Metrics XAMetrics
	// Logger; nil discards.
	Logger *slog.Logger
	// TestHook, for tests only, is called at the points of a multi-shard commit:
	// "prepared" (every participant prepared, no decision yet) and "committed" (the decision
	// is durable, participants not yet committed). Nil in production.
	TestHook func(point string)
}

// Coordinator runs the commit protocol of writes spanning shards for one proxy process. It
// is safe for concurrent use; each write is one call of Commit.
type Coordinator struct {
	o        CoordinatorOptions
	instance uint32        // random id of this proxy process, in the XA transactions it starts
	seq      atomic.Uint64 // numbers XA transactions
}

// NewCoordinator returns a Coordinator with a random instance id; zero options get their
// defaults.
func NewCoordinator(o CoordinatorOptions) *Coordinator {
	if o.Metrics == nil {
		o.Metrics = noXAMetrics{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Coordinator{o: o, instance: rand.Uint32()}
}

// Gtrid names a new multi-shard transaction coordinated by shard coord: the proxy's
// prefix, this proxy's instance id, the time (unix ms, to judge the age of an orphan), a
// sequence number, and a tag of the coordinator shard (where recovery finds the decision).
// At most 57 bytes (XA allows 64).
func (co *Coordinator) Gtrid(coord string) string {
	return fmt.Sprintf("%s%08x:%x:%x:%s", xaPrefix, co.instance, time.Now().UnixMilli(), co.seq.Add(1), shardTag(coord))
}

func (co *Coordinator) hook(point string) {
	if co.o.TestHook != nil {
		co.o.TestHook(point)
	}
}

// Write is one write spanning shards, as Commit runs it.
type Write struct {
	Gtrid    string   // from Gtrid(the first branch's shard)
	Branches []Branch // the first coordinates
	ConnID   uint32   // the client connection's id, for logs
}

// branchRun is a branch being executed.
type branchRun struct {
	b     Branch
	coord bool
	xid   xid
	state int // xaNone, xaStarted, xaPrepared
}

const (
	xaNone = iota
	xaStarted
	xaPrepared
)

// Commit runs every branch of w and commits them all or none. One branch is a local
// transaction (no XA, nothing counted). The error is the failing branch's (firstError);
// when the coordinator's COMMIT was lost, it closes the client connection (sqlerr.Lost). On
// return no connection is left inside a branch: one that is is marked broken.
func (co *Coordinator) Commit(ctx context.Context, w Write) error {
	runs := make([]*branchRun, len(w.Branches))
	for i, b := range w.Branches {
		runs[i] = &branchRun{b: b, coord: i == 0, xid: xid{w.Gtrid, branchQual(b.Shard())}}
	}
	err := co.commit(ctx, w, runs)
	for _, r := range runs {
		if c := r.b.Conn(); r.state != xaNone && !c.State().Broken() {
			c.State().MarkBroken() // never hand out a connection still inside a branch
		}
	}
	return err
}

func (co *Coordinator) commit(ctx context.Context, w Write, runs []*branchRun) error {
	multi := len(runs) > 1
	errs := co.parallel(w, runs, func(r *branchRun) error { return co.runBranch(ctx, r, w.Gtrid, multi) })
	if err := firstError(errs); err != nil {
		co.abort(ctx, w, runs)
		co.count(multi, XARolledBack)
		return err
	}
	if multi {
		co.hook("prepared")
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CommitTimeout)
	defer cancel()
	coord := runs[0]
	cc := coord.b.Conn()
	ok, err := cc.Exec(cctx, "COMMIT")
	if err != nil {
		if cc.State().Broken() && multi {
			// The decision may or may not be durable: leave the prepared branches to recovery.
			for _, r := range runs[1:] {
				r.b.Conn().State().MarkBroken()
			}
			co.o.Logger.Warn("multi-shard commit outcome unknown; recovery will finish it", "conn_id", w.ConnID, "gtrid", w.Gtrid, "shard", coord.b.Shard(), "err", err)
			co.count(multi, XAUnknown)
			return sqlerr.Lost(fmt.Errorf("%w: %w", engine.ErrBackendIO, sqlerr.New(sqlerr.ErConnLost,
				"Lost connection to shard %s while committing a write spanning shards (xid %q): it is either committed on every shard or on none, as recovery will settle", coord.b.Shard(), w.Gtrid)))
		}
		co.abort(ctx, w, runs)
		co.count(multi, XARolledBack)
		if cc.State().Broken() {
			// One shard's local transaction: its COMMIT may or may not have happened.
			return sqlerr.Lost(err)
		}
		return err
	}
	cc.State().SetStatus(ok.Status)
	coord.state = xaNone
	if !multi {
		return nil
	}
	co.count(multi, XACommitted)
	co.hook("committed")
	co.parallel(w, runs[1:], func(r *branchRun) error {
		c := r.b.Conn()
		ok, err := c.Exec(cctx, "XA COMMIT "+r.xid.String())
		if err != nil {
			// Decided: recovery commits the branch once this connection is gone.
			c.State().MarkBroken()
			co.o.Logger.Warn("XA COMMIT failed after the commit decision; recovery will commit the branch", "conn_id", w.ConnID, "gtrid", w.Gtrid, "shard", r.b.Shard(), "err", err)
			return nil
		}
		c.State().SetStatus(ok.Status)
		r.state = xaNone
		return nil
	})
	return nil
}

// count counts the outcome of a write spanning shards (multi); one-shard writes need no XA
// and are not counted.
func (co *Coordinator) count(multi bool, outcome string) {
	if multi {
		co.o.Metrics.XATransaction(outcome)
	}
}

// runBranch runs one branch up to its commit point: the coordinator's statements and
// decision row inside a local transaction, a participant's statements in a prepared XA
// branch. multi says whether there are participants.
func (co *Coordinator) runBranch(ctx context.Context, r *branchRun, gtrid string, multi bool) error {
	defer r.b.Settled()
	begin := "START TRANSACTION"
	if !r.coord {
		begin = "XA START " + r.xid.String()
	}
	if err := r.b.Exec(ctx, begin); err != nil {
		return err
	}
	r.state = xaStarted
	if err := r.b.Run(ctx); err != nil {
		return err
	}
	if r.coord {
		if multi {
			return r.b.Exec(ctx, decisionInsert(gtrid))
		}
		return nil
	}
	if err := r.b.Exec(ctx, "XA END "+r.xid.String()); err != nil {
		return err
	}
	if err := r.b.Exec(ctx, "XA PREPARE "+r.xid.String()); err != nil {
		return err
	}
	r.state = xaPrepared
	return nil
}

// abort rolls back every branch that started; a connection whose branch could not be
// rolled back is closed (the server rolls back an unprepared branch on disconnect;
// recovery rolls back a prepared one, which has no commit decision).
func (co *Coordinator) abort(ctx context.Context, w Write, runs []*branchRun) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CommitTimeout)
	defer cancel()
	co.parallel(w, runs, func(r *branchRun) error {
		c := r.b.Conn()
		if r.state == xaNone || c.State().Broken() {
			return nil
		}
		if r.coord {
			if ok, err := c.Exec(rctx, "ROLLBACK"); err != nil {
				c.State().MarkBroken()
			} else {
				c.State().SetStatus(ok.Status)
				r.state = xaNone
			}
			return nil
		}
		if r.state == xaStarted {
			_, _ = c.Exec(rctx, "XA END "+r.xid.String()) // fails when already ended or rolled back
		}
		ok, err := c.Exec(rctx, "XA ROLLBACK "+r.xid.String())
		if err != nil && !xaGone(err) {
			c.State().MarkBroken()
			co.o.Logger.Warn("XA ROLLBACK failed; closing the connection", "conn_id", w.ConnID, "shard", r.b.Shard(), "err", err)
			return nil
		}
		if err == nil {
			c.State().SetStatus(ok.Status)
		}
		r.state = xaNone
		return nil
	})
}

// parallel runs f for each branch in its own goroutine and waits for all; the errors are in
// the branches' order. A panic in f fails only its branch, whose connection is marked broken.
func (co *Coordinator) parallel(w Write, runs []*branchRun, f func(*branchRun) error) []error {
	errs := make([]error, len(runs))
	run := func(i int, r *branchRun) {
		defer func() {
			if v := recover(); v != nil {
				c := r.b.Conn()
				co.o.Logger.Error("panic while handling backend connection; it is closed", "conn_id", w.ConnID, "backend_conn", c.ID(), "panic", v, "stack", string(debug.Stack()))
				c.State().MarkBroken()
				errs[i] = engine.Panicked(v)
			}
		}()
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
