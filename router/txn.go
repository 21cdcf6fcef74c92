package router

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// A transaction pins one backend connection per shard it touches, for as long as the
// backend says a transaction is open on it (SERVER_STATUS_IN_TRANS in its OK and EOF
// packets): autocommit=0 alone pins nothing, as MariaDB starts a transaction only at the
// first statement that needs one. Once a transaction is open, every connection the session
// uses joins it: it runs the statement that began the transaction (BEGIN when autocommit=0
// began it) and recreates the session's live savepoints, which on that shard name its empty
// state. Reads may touch any number of shards; writes may touch one: a write to a second
// shard would need an atomic multi-shard commit (XA), so it is refused and the whole
// transaction rolled back, leaving nothing half committed.

// MySQL errors the transaction logic recognises.
const (
	erLockDeadlock      uint16 = 1213 // ER_LOCK_DEADLOCK: the server rolled the transaction back
	erSavepointNotExist uint16 = 1305 // ER_SP_DOES_NOT_EXIST, "SAVEPOINT x does not exist"
)

// savepoint is one live savepoint of the session's transaction: it exists on every
// connection in the transaction.
type savepoint struct {
	name    string
	written []string // shards written before it (restored by ROLLBACK TO it)
}

// txnOpen reports whether a transaction is open on any connection the session keeps.
func (s *Session) txnOpen() bool {
	for _, c := range s.pinned {
		if c.Status()&wire.StatusInTrans != 0 {
			return true
		}
	}
	return false
}

// needsJoin reports whether a connection with status st must join the session's
// transaction before it runs a statement: a transaction is open elsewhere, or autocommit=0
// savepoints were taken before any connection opened one.
func needsJoin(st uint16, open bool, savepoints int) bool {
	return st&wire.StatusInTrans == 0 && (open || savepoints > 0)
}

// joinTransaction starts the session's transaction on a connection that is not yet in it
// and recreates the live savepoints there.
func (s *Session) joinTransaction(ctx context.Context, c Conn) error {
	open := s.txnOpen()
	if !needsJoin(c.Status(), open, len(s.savepoints)) {
		return nil
	}
	stmts := joinStatements(s.txnBegin, s.savepoints)
	if !open {
		// Savepoints taken under autocommit=0 before any statement opened the transaction:
		// MariaDB keeps them with no transaction open (@@in_transaction 0) until a statement
		// opens one, and so does c, without BEGIN. c may go back before that: the pool
		// resets it then, so that they do not outlive the session's use of it.
		stmts = stmts[1:]
		c.MarkDirty()
	}
	it := engine.Watch(ctx, c, nil)
	defer it.Stop()
	for _, q := range stmts {
		ok, err := c.Exec(ctx, q)
		if err != nil {
			c.MarkDirty() // half joined: the pool's reset rolls back
			return err
		}
		c.SetStatus(ok.Status)
	}
	return nil
}

// joinStatements are the statements that make a connection join a transaction begun by
// begin ("" when autocommit=0 began it) with the live savepoints sps.
func joinStatements(begin string, sps []savepoint) []string {
	if begin == "" {
		begin = "BEGIN"
	}
	out := []string{begin}
	for _, sp := range sps {
		out = append(out, "SAVEPOINT "+quoteName(sp.name))
	}
	return out
}

// quoteName quotes an identifier with backticks.
func quoteName(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// settle decides, after a statement ran on c (a backend error leaves c usable), whether the
// session keeps it: while the backend says a transaction is open on it, or while the
// session holds state the proxy cannot replay. A transaction that the statement ended on c
// (an implicit commit: DDL, SET autocommit = 1, ...) is committed on the other connections
// too; a deadlock, which rolled back the transaction on c, rolls it back everywhere.
func (s *Session) settle(shard *rules.Shard, c Conn, err error) {
	if err != nil {
		s.failedBegin(c)
	}
	if err != nil && s.newWriter == shard.Name {
		delete(s.written, shard.Name) // the failed write that made it the writer changed nothing
	}
	s.newWriter = ""
	deadlock := err != nil && sqlCodeOf(err) == erLockDeadlock &&
		(c.Status()&wire.StatusInTrans != 0 || s.txnOpen())
	if s.sticky || c.Status()&wire.StatusInTrans != 0 || deadlock {
		s.pinned[shard.Name] = c
	} else {
		delete(s.pinned, shard.Name)
		s.last[shard.Name] = c
		s.held.release(c)
	}
	switch {
	case deadlock:
		s.rollbackOnDeadlock(err)
	case err == nil && c.Status()&wire.StatusInTrans == 0 && s.txnOpen():
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		_ = s.endAll(ctx, "COMMIT", true)
		cancel()
	}
	s.endedTransaction()
	if s.txnOpen() {
		s.status |= wire.StatusInTrans
	}
}

// failedBegin notes the transaction a failed statement may have begun on c under
// autocommit = 0: MariaDB begins it once the statement opened its tables (a duplicate key
// leaves it open, an unknown column does not), and an ERR packet carries no status, so c
// is asked; one round trip, only after an error on a connection not yet in a transaction.
func (s *Session) failedBegin(c Conn) {
	if s.status&wire.StatusAutocommit != 0 || c.Status()&wire.StatusInTrans != 0 || c.Broken() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	rows, err := engine.QueryRows(ctx, c, "SELECT @@in_transaction")
	switch {
	case err != nil:
		c.MarkDirty() // unknown: the pool's reset rolls back whatever is open
	case len(rows) == 1 && len(rows[0]) == 1 && rows[0][0] != nil && *rows[0][0] == "1":
		c.SetStatus(c.Status() | wire.StatusInTrans)
	}
}

// rollbackOnDeadlock rolls the open transaction back on every connection when err is a
// deadlock, which rolled it back on the shard that reported it. A scatter query calls it
// once all its shards settled, as some may have joined after the one that failed.
func (s *Session) rollbackOnDeadlock(err error) {
	if sqlCodeOf(err) != erLockDeadlock || !s.txnOpen() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	s.rollbackAll(ctx)
}

// sqlCodeOf returns the MySQL error code of err, or 0.
func sqlCodeOf(err error) uint16 {
	if e, ok := sqlerr.As(err); ok {
		return e.Code
	}
	return 0
}

// checkWrite enforces the one-writing-shard rule before a write runs on shard inside a
// transaction. On refusal the transaction has been rolled back everywhere. The first write
// makes its shard the writer only if it succeeds (settle): a failed statement changed
// nothing, as MariaDB rolls a statement back whole.
func (s *Session) checkWrite(ctx context.Context, shard *rules.Shard) error {
	s.newWriter = ""
	if !s.inTransaction() {
		return nil
	}
	if len(s.written) == 0 || s.written[shard.Name] {
		if !s.written[shard.Name] {
			s.newWriter = shard.Name
		}
		s.written[shard.Name] = true
		return nil
	}
	other := slices.Sorted(maps.Keys(s.written))
	s.rollbackAll(ctx)
	return sqlerr.NotSupported("a transaction writing to shard %s after shard %s (multi-shard transactions need XA); the transaction was rolled back",
		shard.Name, strings.Join(other, ", "))
}

// txnStatus is the session's status after a pinned connection answered a transaction
// statement with st, keeping the session's autocommit: a pinned connection follows a SET
// autocommit that another shard's connection ran only at its next statement (acquire).
func (s *Session) txnStatus(st uint16) uint16 {
	return st&^wire.StatusAutocommit | s.status&wire.StatusAutocommit
}

// rollbackAll rolls back every pinned connection and ends the transaction.
func (s *Session) rollbackAll(ctx context.Context) {
	for name, c := range s.pinned {
		it := engine.Watch(ctx, c, nil)
		ok, err := c.Exec(ctx, "ROLLBACK")
		it.Stop()
		if err != nil {
			c.MarkDirty() // the pool's reset rolls back what ROLLBACK could not
			c.SetStatus(c.Status() &^ wire.StatusInTrans)
		} else {
			c.SetStatus(ok.Status)
			s.status = s.txnStatus(ok.Status)
		}
		if !s.sticky {
			delete(s.pinned, name)
			s.held.release(c)
		}
	}
	s.status &^= wire.StatusInTrans
	s.savepoints = nil
	s.endedTransaction()
}

// endedTransaction forgets the transaction's bookkeeping once it is over.
func (s *Session) endedTransaction() {
	if !s.txnOpen() {
		clear(s.written)
		s.txnBegin = ""
		if s.status&wire.StatusAutocommit != 0 {
			// Under autocommit=0 savepoints taken before any connection opened the
			// transaction stay until a statement opens it (COMMIT and ROLLBACK clear them).
			s.savepoints = nil
		}
	}
}

// endTransaction runs COMMIT, ROLLBACK or a savepoint statement for the whole transaction.
func (s *Session) endTransaction(ctx context.Context, snap *rules.Snapshot, st ast.StmtNode, text string, more bool, w wire.PacketWriter) error {
	switch n := st.(type) {
	case *ast.SavepointStmt:
		return s.savepointStmt(ctx, n.Name, text, more, w)
	case *ast.ReleaseSavepointStmt:
		return s.toSavepoint(ctx, n.Name, text, true, more, w)
	case *ast.RollbackStmt:
		if n.SavepointName != "" {
			return s.toSavepoint(ctx, n.SavepointName, text, false, more, w)
		}
	}
	s.savepoints = nil
	err := s.end(ctx, snap, st, text, more, w)
	if err == nil {
		clear(s.written) // the transaction AND CHAIN began has written nothing yet
	}
	return err
}

// end runs COMMIT or ROLLBACK for the whole transaction.
func (s *Session) end(ctx context.Context, snap *rules.Snapshot, st ast.StmtNode, text string, more bool, w wire.PacketWriter) error {
	switch len(s.pinned) {
	case 0:
		if chained(st) {
			return s.runOnDefault(ctx, snap, st, text, more, w) // it begins a transaction
		}
		// Nothing is open on any backend: MariaDB answers OK and does nothing.
		s.status &^= wire.StatusInTrans
		s.endedTransaction()
		return s.writeOK(w, more)
	case 1:
		return s.runOnDefault(ctx, snap, st, text, more, w)
	}
	_, commit := st.(*ast.CommitStmt)
	if err := s.endAll(ctx, text, commit); err != nil {
		return err
	}
	return s.writeOK(w, more)
}

// chained reports whether a COMMIT or ROLLBACK asks for more than ending the transaction
// (AND CHAIN begins the next one, RELEASE ends the session).
func chained(st ast.StmtNode) bool {
	switch n := st.(type) {
	case *ast.CommitStmt:
		return n.CompletionType != ast.CompletionTypeDefault
	case *ast.RollbackStmt:
		return n.CompletionType != ast.CompletionTypeDefault
	}
	return false
}

// endAll sends COMMIT (commit set) or ROLLBACK to every pinned connection and releases those
// that leave the transaction. The writing shard, if any, commits last, so a failure before it
// leaves nothing committed. A COMMIT the writing shard received but never answered (its
// connection died, or was cut when ctx ended) has an unknown outcome: the error then closes
// the client connection (sqlerr.Lost), as a lost COMMIT on one server would.
func (s *Session) endAll(ctx context.Context, text string, commit bool) error {
	names := slices.SortedFunc(maps.Keys(s.pinned), func(a, b string) int {
		wa, wb := s.written[a], s.written[b]
		switch {
		case wa == wb:
			return strings.Compare(a, b)
		case wa:
			return 1
		}
		return -1
	})
	var firstErr error
	for _, name := range names {
		c := s.pinned[name]
		it := engine.Watch(ctx, c, nil)
		ok, err := c.Exec(ctx, text)
		if it.Stop() {
			err = ctx.Err()
		}
		if err != nil {
			if commit && s.written[name] && c.Broken() {
				firstErr = sqlerr.Lost(sqlerr.New(sqlerr.ErConnLost,
					"Lost connection to shard %s during COMMIT of a transaction that wrote there; it may or may not have committed (%v)", name, err))
			} else if firstErr == nil {
				firstErr = err
			}
			c.MarkDirty()
			c.SetStatus(c.Status() &^ wire.StatusInTrans) // the pool's reset ends it
			continue
		}
		c.SetStatus(ok.Status)
		s.status = s.txnStatus(ok.Status)
	}
	s.savepoints = nil
	for name, c := range s.pinned {
		if !s.sticky && c.Status()&wire.StatusInTrans == 0 {
			delete(s.pinned, name)
			s.last[name] = c
			s.held.release(c)
		}
	}
	s.endedTransaction()
	if s.txnOpen() {
		s.status |= wire.StatusInTrans
	}
	return firstErr
}

// runOnDefault runs a statement through the normal single-shard path.
func (s *Session) runOnDefault(ctx context.Context, snap *rules.Snapshot, st ast.StmtNode, text string, more bool, w wire.PacketWriter) error {
	p, err := s.plan(snap, st, text, nil)
	if err != nil {
		return err
	}
	if c, ok := s.onlyPinned(); ok {
		// The transaction lives on one shard: end it there, wherever the default shard is.
		return s.runOn(ctx, snap, c.shard, c.conn, p.sql, more, w)
	}
	return s.run(ctx, snap, p.shard, p.sql, more, w)
}

type pinnedConn struct {
	shard *rules.Shard
	conn  Conn
}

// onlyPinned returns the single pinned connection, if there is exactly one.
func (s *Session) onlyPinned() (pinnedConn, bool) {
	if len(s.pinned) != 1 {
		return pinnedConn{}, false
	}
	for name, c := range s.pinned {
		sh, ok := s.r.rules.Load().Shard(name)
		if !ok {
			return pinnedConn{}, false
		}
		return pinnedConn{shard: sh, conn: c}, true
	}
	return pinnedConn{}, false
}

// runOn runs sql on an already pinned connection of shard.
func (s *Session) runOn(ctx context.Context, snap *rules.Snapshot, shard *rules.Shard, c Conn, sql string, more bool, w wire.PacketWriter) error {
	out, err := s.intr.relayOn(ctx, shard, c, engine.ComQuery, []byte(sql), more, !s.reads.readOnly, w)
	s.diag.record(ctx, c, out, err)
	out.LastInsertID = s.ids.generated(ctx, c, out, err) // (relayed already) after record: its SHOW WARNINGS comes first
	s.reads.trackGTID(ctx, splitSetting(snap, s.user, s.db), shard, c, err)
	return s.finish(shard, c, out, err)
}

// errNoSavepoint is MariaDB's answer to a savepoint name the transaction does not have.
func errNoSavepoint(name string) error {
	return sqlerr.New(erSavepointNotExist, "SAVEPOINT %s does not exist", name)
}

// findSavepoint returns the index of the live savepoint name (compared without case, as
// MariaDB does), or -1.
func findSavepoint(sps []savepoint, name string) int {
	for i := len(sps) - 1; i >= 0; i-- {
		if strings.EqualFold(sps[i].name, name) {
			return i
		}
	}
	return -1
}

// pushSavepoint returns the stack after SAVEPOINT name: an older savepoint of the same name
// is deleted, the new one is the most recent.
func pushSavepoint(sps []savepoint, name string, written map[string]bool) []savepoint {
	if i := findSavepoint(sps, name); i >= 0 {
		sps = slices.Delete(slices.Clone(sps), i, i+1)
	}
	return append(sps, savepoint{name: name, written: slices.Sorted(maps.Keys(written))})
}

// savepointStmt runs SAVEPOINT on every connection in the transaction and records it.
// Outside a transaction with autocommit on, MariaDB ignores it; with autocommit off and no
// connection in a transaction yet, it is only recorded: connections create it as they join.
func (s *Session) savepointStmt(ctx context.Context, name, text string, more bool, w wire.PacketWriter) error {
	open := s.txnOpen()
	if !open && s.status&wire.StatusAutocommit != 0 {
		return s.writeOK(w, more)
	}
	if open {
		if err := s.sendInTxn(ctx, text); err != nil {
			return err
		}
	}
	s.savepoints = pushSavepoint(s.savepoints, name, s.written)
	return s.writeOK(w, more)
}

// toSavepoint runs ROLLBACK TO SAVEPOINT (release false) or RELEASE SAVEPOINT on every
// connection in the transaction. ROLLBACK TO undoes the work every shard did since the
// savepoint (a shard that joined later created it when it joined) and forgets the writes
// made since; both forget the later savepoints, RELEASE the savepoint itself too.
func (s *Session) toSavepoint(ctx context.Context, name, text string, release, more bool, w wire.PacketWriter) error {
	i := findSavepoint(s.savepoints, name)
	if i < 0 {
		return errNoSavepoint(name)
	}
	if s.txnOpen() {
		if err := s.sendInTxn(ctx, text); err != nil {
			return err
		}
	}
	sp := s.savepoints[i]
	if release {
		s.savepoints = s.savepoints[:i]
	} else {
		s.savepoints = s.savepoints[:i+1]
		clear(s.written)
		for _, name := range sp.written {
			s.written[name] = true
		}
	}
	return s.writeOK(w, more)
}

// sendInTxn runs a savepoint statement on every connection in the transaction. A lost
// connection loses the transaction: it is rolled back everywhere and the client connection
// closed, as for any statement.
func (s *Session) sendInTxn(ctx context.Context, text string) error {
	var firstErr error
	for _, name := range slices.Sorted(maps.Keys(s.pinned)) {
		c := s.pinned[name]
		if c.Status()&wire.StatusInTrans == 0 {
			continue
		}
		it := engine.Watch(ctx, c, nil)
		ok, err := c.Exec(ctx, text)
		if it.Stop() && err == nil {
			err = ctx.Err()
		}
		if err == nil {
			c.SetStatus(ok.Status)
			s.status = s.txnStatus(ok.Status)
			continue
		}
		if c.Broken() {
			s.rollbackAll(context.WithoutCancel(ctx))
			return lostTxnError(name, err)
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// lostTxnError is the error after which the client connection is closed: the backend
// connection of shard holding transaction or session state was lost.
func lostTxnError(shard string, err error) error {
	return sqlerr.Lost(sqlerr.New(sqlerr.ErConnLost,
		"Lost connection to backend of shard %s with an open transaction or session state; the transaction was rolled back (%v)", shard, err))
}
