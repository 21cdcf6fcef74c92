package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// A statement's deadline is the proxy's, not the backend's: it becomes the deadline of the
// statement's context, which bounds the pool wait, the dial, the exchange with every shard.
// Where it comes from, most specific first:
//
//	hint      SELECT /*+ MAX_EXECUTION_TIME(ms) */ ...
//	session   SET [SESSION] max_execution_time = ms (MySQL) or max_statement_time = s (MariaDB)
//	user      users[].max_execution_time in the configuration
//	database  databases[].max_execution_time of the session's current database
//	server    server.max_execution_time
//
// A zero at the hint or session level means "no limit" and ends the search, as in MySQL.
// Transaction control, SET, USE and KILL run without a deadline: timing them out would leave
// the client unsure of what happened.

// Deadline sources, the label values of Metrics.StatementTimeout.
const (
	SourceHint     = "hint"
	SourceSession  = "session"
	SourceUser     = "user"
	SourceDatabase = "database"
	SourceServer   = "server"
)

// Kill reasons, the label values of Metrics.BackendKill.
const (
	ReasonTimeout        = "timeout"
	ReasonClientGone     = "client_gone"
	ReasonKillQuery      = "kill_query"
	ReasonKillConnection = "kill_connection"
	ReasonOther          = "other" // e.g. the proxy shutting down
)

// Metrics counts what deadlines and cancellation do. Implementations must be safe for
// concurrent use; Options.Metrics nil counts nothing.
type Metrics interface {
	// StatementTimeout counts a statement that ran out of its deadline, by source.
	StatementTimeout(source string)
	// BackendKill counts a KILL QUERY sent to a backend, by the reason its statement stopped.
	BackendKill(reason string)
}

type noMetrics struct{}

func (noMetrics) StatementTimeout(string) {}
func (noMetrics) BackendKill(string)      {}

// drainTimeout bounds how long an interrupted backend statement may take to answer after
// KILL QUERY; a connection that has not answered by then is closed.
const drainTimeout = time.Second

func isDeadlineVar(name string) bool {
	n := strings.ToLower(name)
	return n == planner.VarMaxExecutionTime || n == planner.VarMaxStatementTime
}

// hintDeadline is the MAX_EXECUTION_TIME hint of a statement, if it has one.
type hintDeadline struct {
	d   time.Duration
	set bool
}

// statementHint returns the statement's MAX_EXECUTION_TIME(ms) optimizer hint.
func statementHint(st ast.StmtNode) hintDeadline {
	var hints []*ast.TableOptimizerHint
	switch n := st.(type) {
	case *ast.SelectStmt:
		hints = n.TableHints
	case *ast.UpdateStmt:
		hints = n.TableHints
	case *ast.DeleteStmt:
		hints = n.TableHints
	case *ast.InsertStmt:
		hints = n.TableHints
	}
	var h hintDeadline
	for _, x := range hints {
		if x.HintName.L != "max_execution_time" {
			continue
		}
		if ms, ok := x.HintData.(uint64); ok {
			h = hintDeadline{d: time.Duration(min(ms, math.MaxInt64/uint64(time.Millisecond))) * time.Millisecond, set: true}
		}
	}
	return h
}

// exempt reports statements that never get a deadline.
func exempt(st ast.StmtNode) bool {
	switch st.(type) {
	case *ast.BeginStmt, *ast.CommitStmt, *ast.RollbackStmt, *ast.SavepointStmt, *ast.ReleaseSavepointStmt,
		*ast.SetStmt, *ast.UseStmt, *ast.KillStmt:
		return true
	}
	return false
}

// deadline resolves the deadline of a statement with hint h that user runs in database db
// (the session's current one, "" for none); zero means none.
func (v *sessionVars) deadline(snap *rules.Snapshot, user, db string, h hintDeadline) (time.Duration, string) {
	switch {
	case h.set:
		return h.d, SourceHint
	case v.execTimeSet:
		return v.execTime, SourceSession
	}
	if u, ok := snap.User(user); ok && u.MaxExecTime > 0 {
		return u.MaxExecTime, SourceUser
	}
	if db, ok := snap.Database(db); ok && db.MaxExecTime > 0 {
		return db.MaxExecTime, SourceDatabase
	}
	if d := time.Duration(snap.Server().MaxExecutionTime); d > 0 {
		return d, SourceServer
	}
	return 0, ""
}

// withDeadline runs f under the statement's deadline (hint h, the session's variables, the
// configured defaults: sessionVars.deadline); see interrupts.withTimeout.
func (s *Session) withDeadline(ctx context.Context, snap *rules.Snapshot, h hintDeadline, f func(context.Context) error) error {
	d, source := s.vars.deadline(snap, s.user, s.db, h)
	return s.intr.withTimeout(ctx, d, source, f)
}

// interrupts is how one session's statements end early: a statement's deadline (its
// running out counted by source), and the kill of what a backend still runs for a statement
// whose context ended (counted by reason). Its zero value is not usable: the Session sets
// every field. Its methods may be called from the goroutines a statement starts.
type interrupts struct {
	metrics Metrics
	log     *slog.Logger
	connID  uint32 // the client connection, for the log
}

// withTimeout runs f under deadline d (none when d <= 0) and counts its running out by
// source (the interruption itself reaches the client as ER_QUERY_TIMEOUT: interruptedError).
func (in *interrupts) withTimeout(ctx context.Context, d time.Duration, source string, f func(context.Context) error) error {
	if d <= 0 {
		return f(ctx)
	}
	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	err := f(sctx)
	if err != nil && ctx.Err() == nil && errors.Is(sctx.Err(), context.DeadlineExceeded) {
		in.metrics.StatementTimeout(source)
		in.log.Debug("statement deadline exceeded", "conn_id", in.connID, "source", source, "deadline", d)
	}
	return err
}

// killReason names why ctx ended, for Metrics.BackendKill.
func killReason(ctx context.Context) string {
	return killReasonOf(context.Cause(ctx))
}

// killReasonOf names the reason an error of an interrupted statement carries (its context's
// cause, wrapped), for Metrics.BackendKill.
func killReasonOf(cause error) string {
	switch {
	case errors.Is(cause, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(cause, sqlerr.ErrClientGone):
		return ReasonClientGone
	case errors.Is(cause, sqlerr.ErrKilledQuery):
		return ReasonKillQuery
	case errors.Is(cause, sqlerr.ErrKilledConnection):
		return ReasonKillConnection
	}
	return ReasonOther
}

// interruptOnDone arms an interrupter for the exchange about to start on c: when ctx ends,
// the statement is killed on its server (killQuery, counted by reason) and its answer
// drained within drainTimeout. The caller must call Stop once the exchange is over.
func (in *interrupts) interruptOnDone(ctx context.Context, shard *rules.Shard, c Conn) *engine.Interrupter {
	return engine.Interrupt(ctx, c, drainTimeout, in.killOnDone(ctx, shard, c))
}

// watchOnDone arms an interrupter that gives c up when ctx ends: the exchange fails at
// once, and Stop marks c broken and kills the statement on its server (killQuery, counted
// by reason). For exchanges whose answer is not worth draining.
func (in *interrupts) watchOnDone(ctx context.Context, shard *rules.Shard, c Conn) *engine.Interrupter {
	return engine.Watch(ctx, c, in.killOnDone(ctx, shard, c))
}

// killOnDone is the kill of the statement c runs once ctx has ended, named by why it ended.
func (in *interrupts) killOnDone(ctx context.Context, shard *rules.Shard, c Conn) func() error {
	return func() error { return in.killQuery(shard, c, killReason(ctx)) }
}

// cutoff passes packets to the client until ctx ends, and drops them afterwards: what an
// interrupted backend read still sends is drained, not relayed. With keep set (a write, a
// COMMIT) nothing is dropped: an answer that arrives after ctx ended is still the truth
// about what the backend did, and the client gets it.
type cutoff struct {
	ctx     context.Context
	w       wire.PacketWriter
	keep    bool
	dropped bool
}

func (c *cutoff) WritePacket(p []byte) error {
	if !c.keep && c.ctx.Err() != nil {
		c.dropped = true
		return nil
	}
	return c.w.WritePacket(p)
}

// interrupted turns the end of an exchange whose context ended into the client's error. A
// statement that completed with everything relayed before ctx ended keeps its success.
//
// A write (or COMMIT) is told what the backend did, never a guess: its answer, however late
// (cutoff relayed it), stands, OK or the backend's own error (the kill stopped it: nothing
// changed, reported as the interruption, 3024 or 1317); when no answer came back (the
// connection died or was closed, the drain timed out) the outcome is unknown and the client
// connection is closed (sqlerr.Lost, drivers report 2013). A read just reports the
// interruption.
func interrupted(ctx context.Context, cw *cutoff, err error, write bool) error {
	switch {
	case err == nil && !cw.dropped:
		return nil
	case !write || isStatementError(err):
		return engine.InterruptedError(ctx)
	}
	return sqlerr.Lost(fmt.Errorf("%w: %w", engine.ErrBackendIO, sqlerr.New(sqlerr.ErConnLost,
		"Lost connection to the backend while a write was interrupted (%v, %v); it may or may not have run", context.Cause(ctx), err)))
}

// relayOn sends one command to c and relays its response to w, under ctx: when ctx ends the
// backend statement is killed and drained, and the client gets interruptedError unless the
// whole response had already reached it. write says the command may change data and its
// answer settles the outcome the client must learn (a statement of its own, a COMMIT; not a
// branch of a multi-shard write, which the commit that follows settles): see interrupted.
func (in *interrupts) relayOn(ctx context.Context, shard *rules.Shard, c Conn, cmd byte, payload []byte, more, write bool, w wire.PacketWriter) (engine.Outcome, error) {
	if ctx.Err() != nil {
		return engine.Outcome{}, engine.InterruptedError(ctx) // nothing sent: the connection stays clean
	}
	it := in.interruptOnDone(ctx, shard, c)
	cw := &cutoff{ctx: ctx, w: w, keep: write}
	err := engine.SendCommand(ctx, c, cmd, payload)
	var out engine.Outcome
	if err == nil {
		out, err = engine.RelayResults(ctx, c, cw, more, cmd == engine.ComStmtExecute)
	}
	if it.Stop() {
		err = interrupted(ctx, cw, err, write)
	}
	if e, ok := sqlerr.As(err); ok && e.Code == erStatementTimeout {
		// MariaDB's own limit (SET STATEMENT max_statement_time=... FOR, a global setting)
		// reaches the client as the proxy's own timeouts do.
		err = sqlerr.New(sqlerr.ErQueryTimeout, "Query execution was interrupted, maximum statement execution time exceeded")
	}
	return out, err
}

// erStatementTimeout is MariaDB's ER_STATEMENT_TIMEOUT, answered for max_statement_time.
const erStatementTimeout = 1969

// killQuery stops a statement left running on c's server after its context ended (KILL
// QUERY over a separate connection, bounded by killTimeout), counted by reason.
func (in *interrupts) killQuery(shard *rules.Shard, c Conn, reason string) error {
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	in.metrics.BackendKill(reason)
	err := c.KillQuery(ctx)
	if err != nil {
		in.log.Warn("kill query failed", "conn_id", in.connID, "shard", shard.Name, "backend", c.Server(), "backend_conn", c.ID(), "reason", reason, "err", err)
	}
	return err
}

// setDeadline applies the proxy-owned variables of a SET and removes them from the
// statement; it reports whether any were there.
func (v *sessionVars) setDeadline(st *ast.SetStmt) (bool, error) {
	kept := st.Variables[:0:0]
	found := false
	for _, a := range st.Variables {
		if !a.IsSystem || a.IsGlobal || a.IsInstance || !isDeadlineVar(a.Name) {
			kept = append(kept, a)
			continue
		}
		found = true
		d, err := deadlineValue(strings.ToLower(a.Name), a.Value)
		if err != nil {
			return found, err
		}
		v.execTime, v.execTimeSet = max(d, 0), d >= 0
	}
	st.Variables = kept
	return found, nil
}

// deadlineValue reads the value of SET max_execution_time (ms) or max_statement_time (s).
// DEFAULT goes back to the configured defaults.
func deadlineValue(name string, e ast.ExprNode) (time.Duration, error) {
	if _, ok := e.(*ast.DefaultExpr); ok || e == nil {
		return -1, nil
	}
	v, ok := e.(*test_driver.ValueExpr)
	bad := sqlerr.New(sqlerr.ErWrongValueForVar, "Variable '%s' can't be set to the value given (a number is needed)", name)
	if !ok {
		return 0, bad
	}
	var f float64
	switch v.Kind() {
	case test_driver.KindInt64:
		f = float64(v.GetInt64())
	case test_driver.KindUint64:
		f = float64(v.GetUint64())
	case test_driver.KindFloat64, test_driver.KindFloat32:
		f = v.GetFloat64()
	case test_driver.KindMysqlDecimal:
		var err error
		if f, err = strconv.ParseFloat(v.GetMysqlDecimal().String(), 64); err != nil {
			return 0, bad
		}
	default:
		return 0, bad
	}
	if f < 0 || math.IsNaN(f) {
		return 0, sqlerr.New(sqlerr.ErWrongValueForVar, "Variable '%s' can't be set to the value of '%v'", name, f)
	}
	unit := time.Millisecond
	if name == planner.VarMaxStatementTime {
		unit = time.Second
	}
	if f*float64(unit) > float64(math.MaxInt64) {
		return 0, sqlerr.New(sqlerr.ErWrongValueForVar, "Variable '%s' can't be set to the value of '%v'", name, f)
	}
	return time.Duration(f * float64(unit)), nil
}
