package router

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/txn"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Session is the router side of one client connection: its current database, session
// variables, transaction and the backend connections pinned to it. Used by one goroutine.
type Session struct {
	r    *Router
	info SessionInfo
	user string

	db     string      // current logical database, "" for none
	vars   sessionVars // session variables, sql_mode's parser and restore flags, SET deadline (vars.go)
	intr   interrupts  // deadlines' timeouts and the kill of backend statements cut short (deadline.go)
	status uint16      // last status flags (autocommit, in transaction)
	sticky bool        // backend session state the proxy cannot replay (user variables, temporary tables, locks): keep connections

	ids        insertIDs        // LAST_INSERT_ID() and the rule of the statement running (insertid.go)
	pinned     map[string]Conn  // shard name → connection kept across statements
	last       map[string]Conn  // shard name → connection released last (a hint for the pool)
	diag       sessionDiag      // diagnostics of the previous statement (diag.go)
	tx         txn.Txn          // the transaction's bookkeeping: begin, writers, savepoints (txn.go)
	branchRows rowsKind         // the multi-shard write running: how CLIENT_FOUND_ROWS counts its rows
	sqlStmts   sqlStmts         // SQL-level PREPARE by name (prepare_sql.go)
	locks      tableLocks       // the LOCK TABLES the session holds on shards (lock.go)
	lists      planner.BigLists // long literal lists cut out of the statement running (biglist.go)

	held heldConns // connections acquired from the backend and not yet released (panics.go)

	act    activity  // what SHOW PROCESSLIST shows of this session
	procs  processes // SHOW PROCESSLIST and KILL as the session's user sees them (process.go)
	parses int       // statements parsed so far (tests count the parses of an EXECUTE)
	route  string    // how the last statement was routed (route.go)

	reads readState // the read/write split and read retry of the statement running, GTIDs of the last writes (readsplit.go)
}

// Status returns the status flags for OK packets the protocol writes itself.
func (s *Session) Status() uint16 { return s.status }

// Query runs the text of a COM_QUERY.
func (s *Session) Query(ctx context.Context, sql string, multi bool, w wire.PacketWriter) error {
	seq := s.diag.seq
	err := s.query(ctx, sql, multi, w)
	if err != nil && s.diag.seq == seq { // refused before a statement ran (a syntax error)
		s.diag.record(ctx, nil, engine.Outcome{}, err)
	}
	return err
}

func (s *Session) query(ctx context.Context, sql string, multi bool, w wire.PacketWriter) error {
	s.route = RouteLocal
	snap := s.r.rules.Load()
	if m := explainShards.FindStringSubmatch(sql); m != nil {
		res, err := s.explainResult(m[1])
		if err != nil {
			return err
		}
		return res.write(w, s.status, false)
	}
	facts := s.vars.facts()
	sql, err := facts.Text(sql)
	if err != nil {
		return err
	}
	if r, ok := planner.ExplainText(sql, s.parseOne); ok {
		if err := facts.Grammar([]ast.StmtNode{r.Stmt}, nil); err != nil {
			return err
		}
		s.publish(sql)
		defer s.publish("")
		return s.withDeadline(ctx, snap, statementHint(r.Stmt), func(ctx context.Context) error {
			return s.execExplain(ctx, snap, r, false, w)
		})
	}
	stmts, err := s.parseText(sql)
	defer func() { s.lists = nil }()
	if gerr := facts.Grammar(stmts, err); gerr != nil {
		return gerr
	}
	if err != nil {
		if multi && !planner.IsStoredProgram(sql) && isBatch(sql, s.vars.backslashEscapes()) {
			return s.runBatch(ctx, snap, sql, w)
		}
		return s.runUnparsed(ctx, snap, sql, err, w)
	}
	switch {
	case len(stmts) == 0 && onlyComments(sql):
		return s.writeOK(w, false) // as MariaDB answers a query of comments
	case len(stmts) == 0:
		return sqlerr.New(sqlerr.ErEmptyQuery, "Query was empty")
	case len(stmts) > 1 && !multi:
		return syntaxError(fmt.Errorf("multi-statements are disabled on this connection, near %q", strings.TrimSpace(stmts[1].Text())))
	}
	for i, st := range stmts {
		text := sql
		if len(stmts) > 1 {
			text = s.lists.Expand(strings.TrimRight(strings.TrimSpace(st.Text()), ";"))
		}
		if err := s.execWithDeadline(ctx, snap, st, text, i < len(stmts)-1, w); err != nil {
			return err
		}
	}
	return nil
}

// execWithDeadline runs one statement under its deadline (see deadline.go), published for
// SHOW PROCESSLIST while it runs.
func (s *Session) execWithDeadline(ctx context.Context, snap *rules.Snapshot, st ast.StmtNode, text string, more bool, w wire.PacketWriter) error {
	s.publish(text)
	defer s.publish("")
	seq := s.diag.seq
	var err error
	if exempt(st) {
		err = s.execStmt(ctx, snap, st, text, more, w)
	} else {
		err = s.withDeadline(ctx, snap, statementHint(st), func(ctx context.Context) error {
			return s.execStmt(ctx, snap, st, text, more, w)
		})
	}
	s.diag.answered(ctx, returnsRows(st), seq, err)
	return err
}

func (s *Session) parse(sql string) ([]ast.StmtNode, error) {
	s.parses++
	stmts, err := parseSafely(s.vars.parser, sql)
	if err != nil {
		return nil, syntaxError(err)
	}
	return stmts, nil
}

// syntaxError is planner.SyntaxError.
func syntaxError(err error) error { return planner.SyntaxError(err) }

// execStmt runs one parsed statement; more says another statement of the same query follows.
// What the session answers itself goes to its handler (stmtRun.answer, dispatch.go); the
// rest is planned and its plan executed (execplan.go).
func (s *Session) execStmt(ctx context.Context, snap *rules.Snapshot, st ast.StmtNode, text string, more bool, w wire.PacketWriter) error {
	s.reads.readOnly, s.reads.retryable, s.ids.rule = readsOnly(st), planner.RetryableRead(st), insertIDRuleOf(st)
	defer func() { s.reads.readOnly, s.reads.retryable, s.ids.rule = false, false, insertIDRule{} }()
	run := &stmtRun{s: s, ctx: ctx, snap: snap, text: text, more: more, w: w}
	if done, err := run.answer(st); done || err != nil {
		return err
	}
	p, err := s.planner(snap).PlanStatement(snap, st, text)
	if errors.Is(err, planner.ErrNestedUnpinned) {
		p, err = s.planBound(ctx, snap, st, err) // subquery_bind.go
	}
	if err != nil {
		return err
	}
	return s.execPlan(ctx, snap, st, text, p, more, run.w) // execplan.go
}

// runRead runs a statement that changes nothing, once more after a lost backend connection
// when it is a retryable read (retryRead).
func (s *Session) runRead(ctx context.Context, snap *rules.Snapshot, shard *rules.Shard, sql string, more bool, w wire.PacketWriter) error {
	return s.retryRead(ctx, shard.Name, w, func(w wire.PacketWriter) error {
		return s.run(ctx, snap, shard, sql, more, w)
	})
}

// countingWriter counts the packets that reached the client.
type countingWriter struct {
	w wire.PacketWriter
	n int
}

func (c *countingWriter) WritePacket(p []byte) error {
	c.n++
	return c.w.WritePacket(p)
}

// run sends one statement to shard and relays its response.
func (s *Session) run(ctx context.Context, snap *rules.Snapshot, shard *rules.Shard, sql string, more bool, w wire.PacketWriter) error {
	if s.route == RouteLocal {
		s.route = RouteSingle
	}
	c, err := s.acquire(ctx, snap, shard)
	if err != nil {
		return err
	}
	return s.runOn(ctx, snap, shard, c, sql, more, w)
}

// useDB switches the current logical database.
func (s *Session) useDB(snap *rules.Snapshot, name string) error {
	if _, ok := snap.Database(name); !ok {
		if planner.IsSystemSchema(name) {
			return sqlerr.NotSupported("USE %s: system schemas are reached through qualified names", name)
		}
		return sqlerr.New(sqlerr.ErBadDB, "Unknown database '%s'", name)
	}
	u, ok := snap.User(s.user)
	if !ok || !u.CanUse(name) {
		return sqlerr.New(sqlerr.ErDBAccessDenied, "Access denied for user '%s' to database '%s'", s.user, name)
	}
	s.db = name
	return nil
}

// UseDB is COM_INIT_DB.
func (s *Session) UseDB(_ context.Context, name string) error {
	defer s.publish("")
	return s.useDB(s.r.rules.Load(), name)
}

func (s *Session) writeOK(w wire.PacketWriter, more bool) error {
	return w.WritePacket(wire.AppendOK(nil, wire.OK{Status: s.resultStatus(more)}))
}

// resultStatus is the status of a result the proxy writes itself; more announces another
// result of the same multi-statement query.
func (s *Session) resultStatus(more bool) uint16 {
	if more {
		return s.status | wire.StatusMoreResults
	}
	return s.status
}

// acquire returns the connection for shard: the pinned one, or a pool connection brought to
// the session's state (database, variables).
// A connection joining an open transaction starts it first (see txn.go).
func (s *Session) acquire(ctx context.Context, snap *rules.Snapshot, shard *rules.Shard) (Conn, error) {
	if c, ok := s.pinned[shard.Name]; ok {
		// A pinned connection still follows the session: USE, and variables set while
		// another shard's connection ran the SET (cheap when nothing changed).
		if err := s.vars.prepareConn(ctx, c, sessionDB(snap, s.db, shard)); err != nil {
			return nil, err
		}
		return c, s.tx.Join(ctx, c, s.txnOpen())
	}
	c, viaSplit, err := s.reads.acquireReplica(ctx, s.r.be, shard)
	switch {
	case viaSplit:
	case err != nil:
	default:
		c, err = s.acquirePrimary(ctx, shard)
	}
	if err != nil {
		return nil, err
	}
	s.held.hold(c)
	err = s.vars.prepareConn(ctx, c, sessionDB(snap, s.db, shard))
	if err == nil {
		err = s.tx.Join(ctx, c, s.txnOpen())
	}
	if err != nil {
		s.held.release(c)
		return nil, err
	}
	return c, nil
}

// acquirePrimary returns a connection to shard's primary, the one the session used last
// when it is idle.
func (s *Session) acquirePrimary(ctx context.Context, shard *rules.Shard) (Conn, error) {
	var c Conn
	var err error
	if pb, ok := s.r.be.(PreferringBackend); ok {
		c, err = pb.AcquirePreferring(ctx, shard, rules.RolePrimary, s.last[shard.Name])
	} else {
		c, err = s.r.be.Acquire(ctx, shard, rules.RolePrimary)
	}
	return c, err
}

// inTransaction reports whether backend state must stay on pinned connections.
func (s *Session) inTransaction() bool {
	return s.status&wire.StatusInTrans != 0 || s.status&wire.StatusAutocommit == 0
}

// finish records what a statement did and releases its connection unless the session must
// keep it (an open transaction, sticky state: see settle in txn.go). It returns err, made fatal for the
// client connection when a backend connection holding transaction state was lost.
func (s *Session) finish(shard *rules.Shard, c Conn, out engine.Outcome, err error) error {
	if out.LastInsertID != 0 {
		s.ids.last = out.LastInsertID
	}
	if !s.held.holds(c) {
		// An earlier shard of the same statement ended the transaction on every connection
		// (a deadlock rolled it back, an implicit commit committed it) and gave c back with
		// the others: there is nothing left to settle, and giving c back again would let
		// the pool hand it to two sessions at once.
		return err
	}
	switch {
	case err == nil:
		s.status = out.Status
	case !c.State().Broken():
		// An ERR packet carries no status; the backend session is as it was.
	default:
		// The session held state on c: its kept connection, or one that joined the open
		// transaction (an XA branch of an autocommit write is not the session's).
		held := s.sticky || s.pinned[shard.Name] == c || (c.State().InTransaction() && s.inTransaction())
		delete(s.pinned, shard.Name)
		s.held.release(c)
		if held {
			return txn.LostError(shard.Name, err)
		}
		return err
	}
	s.settle(shard, c, err)
	return err
}

// Reset is COM_RESET_CONNECTION: back to the state of a fresh login (the current database
// and character set stay, as in MySQL). The pinned connections go back to the pool, which
// resets them: user variables, SQL-level prepared statements, temporary tables, locks and
// an open transaction are gone with them.
func (s *Session) Reset(context.Context) error {
	s.releaseAll(true)
	s.locks = tableLocks{}
	s.sticky = false
	s.ids.last = 0
	s.status = wire.StatusAutocommit
	s.tx.Reset()
	s.diag.last = planner.Diagnostics{}
	s.sqlStmts = sqlStmts{}
	s.vars.reset()
	return nil
}

// releaseAll gives back every pinned connection; dirty ones are reset by the pool.
func (s *Session) releaseAll(dirty bool) {
	for name, c := range s.pinned {
		if dirty || s.sticky {
			c.State().MarkDirty()
		}
		delete(s.pinned, name)
		s.held.release(c)
	}
}

// Close releases the session's connections; an open transaction is rolled back by the
// pool's reset.
func (s *Session) Close() {
	s.releaseAll(s.sticky || s.inTransaction())
}

// FieldList is COM_FIELD_LIST, relayed to the shard holding the table.
func (s *Session) FieldList(ctx context.Context, table, wildcard string, w wire.PacketWriter) error {
	snap := s.r.rules.Load()
	if s.db == "" {
		return sqlerr.New(sqlerr.ErNoDB, "No database selected")
	}
	db, _ := snap.Database(s.db)
	if db == nil {
		return sqlerr.New(sqlerr.ErBadDB, "Unknown database '%s'", s.db)
	}
	shard := db.DefaultShard
	if db.Configured(table) { // a sharded or broadcast table: ask its first physical copy
		p := planner.FirstCopy(db.Table(table))
		shard, table = p.Shard, p.Table
	}
	c, err := s.acquire(ctx, snap, shard)
	if err != nil {
		return err
	}
	it := s.intr.watchOnDone(ctx, shard, c)
	err = engine.SendCommand(ctx, c, engine.ComFieldList, []byte(table), []byte{0}, []byte(wildcard))
	if err == nil {
		err = engine.RelayFieldList(ctx, c, w)
	}
	it.Stop()
	return s.finish(shard, c, engine.Outcome{Status: s.status}, err)
}

// onlyComments reports whether sql, in which the parser found no statement, holds more than
// whitespace and semicolons: comments, which MariaDB answers with OK (an empty query gets
// 1065).
func onlyComments(sql string) bool {
	return strings.Trim(sql, " \t\r\n\f\v;") != ""
}
