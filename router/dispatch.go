package router

import (
	"context"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/planner"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// stmtRun is one statement on its way through execStmt: the session and what the handlers
// of its statement family need. A handler may wrap w for the statement's plan (SHOW STATUS
// adds the proxy's TLS rows). Used by the session's goroutine for one statement.
type stmtRun struct {
	s    *Session
	ctx  context.Context
	snap *rules.Snapshot
	text string
	more bool // another statement of the same query follows
	w    wire.PacketWriter
}

// answer runs st when the session answers it before planning, or instead of planning:
// statements on the session's own state (USE, SET, KILL), the SHOW statements the proxy
// answers, table locks on shards, EXPLAIN of a statement's route, LOAD DATA LOCAL,
// SQL-level prepared statements and transaction control. done says st was answered; when
// it is false, st goes on to planning (an INSERT has its columns named first).
func (r *stmtRun) answer(st ast.StmtNode) (done bool, err error) {
	s := r.s
	switch n := st.(type) {
	case *ast.UseStmt:
		return true, r.use(n)
	case *ast.SetStmt:
		return true, s.set(r.ctx, r.snap, n, r.text, r.more, r.w)
	case *ast.KillStmt:
		return true, r.kill(n)
	case *ast.ShowStmt:
		return r.show(n)
	case *ast.InsertStmt:
		return false, s.nameInsertColumns(r.ctx, r.snap, n)
	case *ast.LockTablesStmt:
		return r.lockTables(n)
	case *ast.UnlockTablesStmt:
		return r.unlockTables()
	case *ast.ExplainStmt:
		return r.explain(n)
	case *ast.LoadDataStmt:
		if n.FileLocRef == ast.FileLocClient {
			return true, s.loadDataLocal(r.ctx, r.snap, n, r.text, r.more, r.w) // loaddata.go
		}
	case *ast.PrepareStmt: // SQL-level prepared statements: prepare_sql.go
		return true, s.sqlPrepare(r.ctx, r.snap, n, r.more, r.w)
	case *ast.ExecuteStmt:
		return true, s.sqlExecute(r.ctx, r.snap, n, r.text, r.more, r.w)
	case *ast.DeallocateStmt:
		return true, s.sqlDeallocate(r.ctx, r.snap, n, r.text, r.more, r.w)
	case *ast.BeginStmt:
		return r.begin()
	case *ast.CommitStmt, *ast.RollbackStmt, *ast.SavepointStmt, *ast.ReleaseSavepointStmt:
		return true, s.endTransaction(r.ctx, r.snap, st, r.text, r.more, r.w)
	}
	return false, nil
}

// ok answers the client with an OK packet.
func (r *stmtRun) ok() error { return r.s.writeOK(r.w, r.more) }

// result answers the client with a result the proxy computed.
func (r *stmtRun) result(res localResult) error {
	return res.write(r.w, r.s.resultStatus(r.more), false)
}

// use is USE: the session's current logical database.
func (r *stmtRun) use(n *ast.UseStmt) error {
	if err := r.s.useDB(r.snap, n.DBName); err != nil {
		return err
	}
	return r.ok()
}

// kill is KILL, of a client connection or its statement (process.go).
func (r *stmtRun) kill(n *ast.KillStmt) error {
	if err := r.s.procs.kill(n, isAdmin(r.snap, r.s.user)); err != nil {
		return err
	}
	return r.ok()
}

// show answers the SHOW statements the proxy answers itself: PROCEDURE/FUNCTION STATUS
// (from information_schema: showroutines.go), PROCESSLIST, WARNINGS and ERRORS, TABLES of a
// database with sharded or broadcast tables. SHOW STATUS goes on to planning with the
// proxy's TLS rows added (sslstatus.go).
func (r *stmtRun) show(n *ast.ShowStmt) (bool, error) {
	s := r.s
	if sel, ok, err := planner.RoutineStatusQuery(n); ok {
		return true, s.execRewritten(r.ctx, r.snap, sel, err, r.more, r.w)
	}
	switch {
	case n.Tp == ast.ShowStatus && !n.GlobalScope:
		r.w = s.info.sslStatusRows(r.w)
	case n.Tp == ast.ShowProcessList:
		res, err := s.procs.show(n.Full, isAdmin(r.snap, s.user))
		if err != nil {
			return true, err
		}
		return true, r.result(res)
	case n.Tp == ast.ShowWarnings || n.Tp == ast.ShowErrors:
		return true, r.result(s.diag.showWarnings(n))
	case n.Tp == ast.ShowTables && n.DBName == "" && s.db != "":
		if db, ok := r.snap.Database(s.db); ok && len(db.TableNames()) > 0 {
			res, err := s.showTables(r.ctx, r.snap, db, n)
			if err != nil {
				return true, err
			}
			return true, r.result(res)
		}
	}
	return false, nil
}

// lockTables is LOCK TABLES naming sharded or broadcast tables, taken on their shards
// (lock.go); other LOCK TABLES go on to planning.
func (r *stmtRun) lockTables(n *ast.LockTablesStmt) (bool, error) {
	s := r.s
	targets, ok, err := s.planner(r.snap).PlanLock(r.snap, n)
	if err != nil || !ok {
		return false, err
	}
	if err := s.locks.replace(r.ctx, s.lockExec(r.snap), targets); err != nil {
		return true, err
	}
	return true, r.ok()
}

// unlockTables is UNLOCK TABLES while the session holds locks on shards; otherwise it goes
// on to planning.
func (r *stmtRun) unlockTables() (bool, error) {
	s := r.s
	if !s.locks.locked() {
		return false, nil
	}
	if err := s.locks.release(r.ctx, s.lockExec(r.snap)); err != nil {
		return true, err
	}
	return true, r.ok()
}

// explain is an EXPLAIN the proxy runs on the shards the statement would reach
// (explain_stmt.go); any other EXPLAIN goes on to planning.
func (r *stmtRun) explain(n *ast.ExplainStmt) (bool, error) {
	req, ok, err := r.s.planner(r.snap).ExplainOf(n, r.text, r.s.parseOne)
	if err != nil || !ok {
		return ok, err
	}
	return true, r.s.execExplain(r.ctx, r.snap, req, r.more, r.w)
}

// begin is BEGIN: it commits the open transaction and starts a new one; a transaction
// spanning shards is committed on each (the writing shard last) before. When the session
// has one pinned connection, BEGIN is sent there; otherwise it goes on to planning.
func (r *stmtRun) begin() (bool, error) {
	s := r.s
	if len(s.pinned) > 1 && s.txnOpen() {
		if err := s.endAll(r.ctx, "COMMIT", true); err != nil {
			return true, err
		}
	}
	s.tx.Begin(r.text)
	if c, ok := s.onlyPinned(r.snap); ok {
		return true, s.runOn(r.ctx, r.snap, c.shard, c.conn, r.text, r.more, r.w)
	}
	return false, nil
}
