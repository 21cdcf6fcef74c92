package router

import (
	"context"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/router/planner"
	"github.com/shardproxy/shardproxy/router/txn"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// The session's transaction: its bookkeeping (the statement that began it, the shards it
// wrote, its savepoints) is a txn.Txn, its participants are the connections the session
// keeps (pinned) that the backend says are in a transaction; router/txn holds the rules
// (one writing shard, joining late, the writing shard committing last). Here the session
// decides which connections it keeps and gives back, and answers the client.

// txnOpen reports whether a transaction is open on any connection the session keeps.
func (s *Session) txnOpen() bool { return txn.Open(s.pinned) }

// settle decides, after a statement ran on c (a backend error leaves c usable), whether the
// session keeps it: while the backend says a transaction is open on it, or while the
// session holds state the proxy cannot replay. A transaction that the statement ended on c
// (an implicit commit: DDL, SET autocommit = 1, ...) is committed on the other connections
// too; a deadlock, which rolled back the transaction on c, rolls it back everywhere.
func (s *Session) settle(shard *rules.Shard, c Conn, err error) {
	if err != nil {
		txn.FailedBegin(context.Background(), c, s.status&wire.StatusAutocommit != 0)
	}
	s.tx.Settled(shard.Name, err != nil) // a failed write that made shard the writer changed nothing
	deadlock := err != nil && txn.Deadlock(err) &&
		(c.State().InTransaction() || s.txnOpen())
	if s.sticky || c.State().InTransaction() || deadlock {
		s.pinned[shard.Name] = c
	} else {
		delete(s.pinned, shard.Name)
		s.last[shard.Name] = c
		s.held.release(c)
	}
	switch {
	case deadlock:
		s.rollbackOnDeadlock(err)
	case err == nil && !c.State().InTransaction() && s.txnOpen():
		ctx, cancel := context.WithTimeout(context.Background(), txn.CommitTimeout)
		_ = s.endAll(ctx, "COMMIT", true)
		cancel()
	}
	s.endedTransaction()
	if s.txnOpen() {
		s.status |= wire.StatusInTrans
	}
}

// rollbackOnDeadlock rolls the open transaction back on every connection when err is a
// deadlock, which rolled it back on the shard that reported it. A scatter query calls it
// once all its shards settled, as some may have joined after the one that failed.
func (s *Session) rollbackOnDeadlock(err error) {
	if !txn.Deadlock(err) || !s.txnOpen() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), txn.CommitTimeout)
	defer cancel()
	s.rollbackAll(ctx)
}

// checkWrite enforces the one-writing-shard rule (txn.Txn.Write) before a write runs on
// shard inside a transaction. On refusal the transaction has been rolled back everywhere.
func (s *Session) checkWrite(ctx context.Context, shard *rules.Shard) error {
	err := s.tx.Write(shard.Name, s.inTransaction())
	if err != nil {
		s.rollbackAll(ctx)
	}
	return err
}

// txnAnswered takes the session's status from the last OK pinned connections answered a
// transaction statement with, keeping the session's autocommit: a pinned connection
// follows a SET autocommit that another shard's connection ran only at its next statement
// (acquire).
func (s *Session) txnAnswered(a txn.Answer) {
	if a.OK {
		s.status = a.Status&^wire.StatusAutocommit | s.status&wire.StatusAutocommit
	}
}

// rollbackAll rolls back every pinned connection and ends the transaction.
func (s *Session) rollbackAll(ctx context.Context) {
	s.txnAnswered(txn.RollbackAll(ctx, s.pinned))
	if !s.sticky {
		for name, c := range s.pinned {
			delete(s.pinned, name)
			s.held.release(c)
		}
	}
	s.status &^= wire.StatusInTrans
	s.tx.DropSavepoints()
	s.endedTransaction()
}

// endedTransaction forgets the transaction's bookkeeping once it is over.
func (s *Session) endedTransaction() {
	if !s.txnOpen() {
		s.tx.Ended(s.status&wire.StatusAutocommit != 0)
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
	s.tx.DropSavepoints()
	err := s.end(ctx, snap, st, text, more, w)
	if err == nil {
		s.tx.ForgetWrites() // the transaction AND CHAIN began has written nothing yet
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

// endAll sends COMMIT (commit set) or ROLLBACK to every pinned connection, the writing
// shard last (txn.Txn.EndAll), and releases those that leave the transaction.
func (s *Session) endAll(ctx context.Context, text string, commit bool) error {
	a, err := s.tx.EndAll(ctx, s.pinned, text, commit)
	s.txnAnswered(a)
	s.tx.DropSavepoints()
	for name, c := range s.pinned {
		if !s.sticky && !c.State().InTransaction() {
			delete(s.pinned, name)
			s.last[name] = c
			s.held.release(c)
		}
	}
	s.endedTransaction()
	if s.txnOpen() {
		s.status |= wire.StatusInTrans
	}
	return err
}

// runOnDefault runs a statement through the normal single-shard path.
func (s *Session) runOnDefault(ctx context.Context, snap *rules.Snapshot, st ast.StmtNode, text string, more bool, w wire.PacketWriter) error {
	p, err := s.plan(snap, st, text, nil)
	if err != nil {
		return err
	}
	shard, sql := plan.First(p) // a Route: transaction statements name no table
	if c, ok := s.onlyPinned(snap); ok {
		// The transaction lives on one shard: end it there, wherever the default shard is.
		return s.runOn(ctx, snap, c.shard, c.conn, sql, more, w)
	}
	return s.run(ctx, snap, shard, sql, more, w)
}

type pinnedConn struct {
	shard *rules.Shard
	conn  Conn
}

// onlyPinned returns the single pinned connection, if there is exactly one, with its shard
// in the statement's snapshot snap.
func (s *Session) onlyPinned(snap *rules.Snapshot) (pinnedConn, bool) {
	if len(s.pinned) != 1 {
		return pinnedConn{}, false
	}
	for name, c := range s.pinned {
		sh, ok := snap.Shard(name)
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
	s.reads.trackGTID(ctx, planner.SplitSetting(snap, s.user, s.db), shard, c, err)
	return s.finish(shard, c, out, err)
}

// quoteName quotes an identifier with backticks (wire.QuoteIdent).
func quoteName(name string) string { return wire.QuoteIdent(name) }

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
	s.tx.Savepoint(name)
	return s.writeOK(w, more)
}

// toSavepoint runs ROLLBACK TO SAVEPOINT (release false) or RELEASE SAVEPOINT on every
// connection in the transaction, then records it (txn.Txn.ToSavepoint).
func (s *Session) toSavepoint(ctx context.Context, name, text string, release, more bool, w wire.PacketWriter) error {
	if err := s.tx.CheckSavepoint(name); err != nil {
		return err
	}
	if s.txnOpen() {
		if err := s.sendInTxn(ctx, text); err != nil {
			return err
		}
	}
	if err := s.tx.ToSavepoint(name, release); err != nil {
		return err
	}
	return s.writeOK(w, more)
}

// sendInTxn runs a savepoint statement on every connection in the transaction. A lost
// connection loses the transaction: it is rolled back everywhere and the client connection
// closed, as for any statement.
func (s *Session) sendInTxn(ctx context.Context, text string) error {
	a, lost, err := txn.SendAll(ctx, s.pinned, text)
	s.txnAnswered(a)
	if lost {
		s.rollbackAll(context.WithoutCancel(ctx))
	}
	return err
}
