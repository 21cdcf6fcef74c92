package router

import (
	"context"
	"strings"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// SQL-level prepared statements (PREPARE name FROM 'text' or FROM @v, EXECUTE name
// [USING @v, ...], DEALLOCATE PREPARE name) live in a backend session, which they pin. The
// text (a user variable's value, read by the proxy first: see userVariable) is parsed,
// checked by the barrier and planned as if the client had sent it alone (Session.nested);
// what the backend prepares is the planned text, on the shard the plan names. A statement
// that must be routed or rewritten at each execution (sharded tables, session functions)
// is refused: the binary protocol's prepared statements do that. EXPLAIN / ANALYZE of a
// statement is kept by the proxy and answered at each EXECUTE as the plain query
// (explain_prepared.go).

// sqlStmt is where a SQL-level prepared statement lives.
type sqlStmt struct {
	shard   *rules.Shard
	write   bool               // changes rows: subject to the one-writing-shard rule of transactions
	columns introspect.Columns // logical names for its results' column definitions
	explain string             // an EXPLAIN kept by the proxy, not a backend (explain_prepared.go)
}

// sqlStmts is a session's SQL-level prepared statements by name (case-insensitive, as in
// MariaDB). The zero value holds none. Owned by one Session; not safe for concurrent use.
type sqlStmts struct {
	byName map[string]sqlStmt // by lower-case name
}

// put records the statement PREPARE name made, replacing one of the same name.
func (r *sqlStmts) put(name string, ps sqlStmt) {
	if r.byName == nil {
		r.byName = map[string]sqlStmt{}
	}
	r.byName[strings.ToLower(name)] = ps
}

// get returns the statement prepared as name.
func (r *sqlStmts) get(name string) (sqlStmt, bool) {
	ps, ok := r.byName[strings.ToLower(name)]
	return ps, ok
}

// remove forgets the statement prepared as name and returns it.
func (r *sqlStmts) remove(name string) (sqlStmt, bool) {
	ps, ok := r.get(name)
	delete(r.byName, strings.ToLower(name))
	return ps, ok
}

// sqlPrepare runs PREPARE name FROM 'text'.
func (s *Session) sqlPrepare(ctx context.Context, snap *rules.Snapshot, n *ast.PrepareStmt, more bool, w wire.PacketWriter) error {
	if n.SQLVar != nil {
		text, err := s.userVariable(ctx, snap, n.SQLVar.Name)
		if err != nil {
			return err
		}
		n.SQLText, n.SQLVar = text, nil
	}
	readable, err := s.vars.facts().Text(n.SQLText) // as planner.Planner.Nested reads it
	if err != nil {
		return err
	}
	if r, ok := planner.ExplainText(readable, s.parseOne); ok {
		return s.sqlPrepareExplain(snap, n.Name, readable, r, more, w)
	}
	inner, p, err := s.planner(snap).Nested(snap, s.vars.facts(), n.SQLText, "PREPARE", s.parseOne)
	if err != nil {
		return err
	}
	n.SQLText = p.SQL
	sql, err := planner.RestoreSQL(s.vars.restoreFlags, s.lists, n)
	if err != nil {
		return err
	}
	s.sticky = true
	if err := s.run(ctx, snap, p.Shard, sql, more, w); err != nil {
		return err
	}
	s.sqlStmts.put(n.Name, sqlStmt{shard: p.Shard, write: planner.IsWrite(inner), columns: p.Columns})
	return nil
}

// sqlExecute runs EXECUTE name [USING @v, ...] on the statement's shard.
func (s *Session) sqlExecute(ctx context.Context, snap *rules.Snapshot, n *ast.ExecuteStmt, text string, more bool, w wire.PacketWriter) error {
	ps, ok := s.sqlStmts.get(n.Name)
	if !ok {
		return sqlerr.New(sqlerr.ErUnknownStmtHandler, "Unknown prepared statement handler (%s) given to EXECUTE", n.Name)
	}
	for _, u := range n.UsingVars {
		if v, ok := u.(*ast.VariableExpr); !ok || v.IsSystem {
			return sqlerr.NotSupported("EXECUTE ... USING anything but user variables")
		}
	}
	if ps.explain != "" {
		return s.sqlExecuteExplain(ctx, snap, ps.explain, n.UsingVars, more, w)
	}
	if !ps.columns.Empty() {
		w = introspect.NewColumns(w, ps.columns)
	}
	if !ps.write {
		return s.run(ctx, snap, ps.shard, text, more, w)
	}
	if err := s.checkWrite(ctx, ps.shard); err != nil {
		return err
	}
	return lostWrite(s.run(ctx, snap, ps.shard, text, more, w))
}

// sqlDeallocate runs DEALLOCATE PREPARE name (DROP PREPARE name) on the statement's shard.
func (s *Session) sqlDeallocate(ctx context.Context, snap *rules.Snapshot, n *ast.DeallocateStmt, text string, more bool, w wire.PacketWriter) error {
	ps, ok := s.sqlStmts.remove(n.Name)
	if !ok {
		return sqlerr.New(sqlerr.ErUnknownStmtHandler, "Unknown prepared statement handler (%s) given to DEALLOCATE PREPARE", n.Name)
	}
	if ps.explain != "" {
		return s.writeOK(w, more)
	}
	return s.run(ctx, snap, ps.shard, text, more, w)
}

// userVariable reads the text of user variable name for PREPARE ... FROM @name. User
// variables live in backend sessions; SET @name goes to the default shard of the session's
// database, so that is where the proxy reads it (a variable assigned by a statement routed
// elsewhere is not seen there, as for any statement reading it).
func (s *Session) userVariable(ctx context.Context, snap *rules.Snapshot, name string) (string, error) {
	var db *rules.Database
	if s.db != "" {
		db, _ = snap.Database(s.db)
	} else {
		db = s.planner(snap).AnyDatabase(snap)
	}
	if db == nil {
		return "", sqlerr.New(sqlerr.ErNoDB, "No database selected")
	}
	shard := db.DefaultShard
	c, err := s.acquire(ctx, snap, shard)
	if err != nil {
		return "", err
	}
	rows, err := engine.QueryRows(ctx, c, "SELECT @`"+strings.ReplaceAll(name, "`", "``")+"`")
	if err = s.finish(shard, c, engine.Outcome{Status: s.status}, err); err != nil {
		return "", err
	}
	if len(rows) != 1 || len(rows[0]) != 1 || rows[0][0] == nil {
		// MariaDB prepares NULL as the text "NULL": a syntax error.
		return "NULL", nil
	}
	return *rows[0][0], nil
}
