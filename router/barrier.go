package router

import (
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/barrier"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// The privilege barrier (router/barrier; docs/architecture.md, invariant 7) stands on every
// path by which SQL reaches a backend. TestBarrierEntryPaths drives a session through each
// with a statement the barrier refuses; a new path belongs there.
//
//   - Text a client sends (COM_QUERY: session.go; COM_STMT_PREPARE: prepare.go; SQL-level
//     PREPARE ... FROM: prepare_sql.go; EXECUTE IMMEDIATE: execute_immediate.go; each piece
//     of a batch the parser cannot read whole: batch.go; SET STATEMENT ... FOR and PREPARE
//     through nested) goes through Facts.Text before it is parsed, so the parser reads what
//     the backend runs, and Facts.Grammar after.
//   - Every parsed statement is planned, and planning starts with barrier.Statement and the
//     analyzer's walk (plan.go), which asks barrier.Schema, Table and Function of every name
//     and function, and the rules of every other database. Statements that reach a backend
//     without a plan pass the same checks where they branch off: DDL fanned out to sharded
//     tables (ddl.go), LOCK TABLES (lock.go, the analyzer), LOAD DATA (loaddata.go plans
//     it), EXPLAIN (explain_stmt.go plans the explained statement), the statements and
//     expressions of stored program bodies (routine_body.go, stored_programs.go: node by
//     node), the expressions of a RETURNING clause (unparsed.go), and the subqueries the
//     proxy runs first (subquery_bind.go: each is planned).
//   - COM_STMT_EXECUTE runs what COM_STMT_PREPARE checked, its values bound as literals;
//     COM_FIELD_LIST and COM_INIT_DB carry names, not SQL (TestBarrierSessionMethods).
//   - Text the parser cannot read runs only when it is one of the shapes of unparsed.go,
//     each taken apart and its parts checked as above; anything else is refused, with
//     barrier.Unparsed's answer. No statement reaches a backend by a deny-list of first
//     words.

// facts are the session facts the barrier reads: the character set and sql_mode the
// session's statements are read under.
func (v *sessionVars) facts() barrier.Facts {
	return barrier.Facts{CharsetClient: v.get("character_set_client"), SQLMode: v.get("sql_mode")}
}

// nested plans a statement nested in another one (PREPARE ... FROM 'text', SET STATEMENT
// ... FOR text): parsed and planned exactly as if the client had sent text alone. what
// names the outer statement for messages. The nested statement must be a data statement
// that runs on one shard as one statement (a Route): the outer one carries it there
// unchanged.
func (s *Session) nested(snap *rules.Snapshot, text, what string) (ast.StmtNode, *plan.Route, error) {
	text, err := s.vars.facts().Text(text)
	if err != nil {
		return nil, nil, err
	}
	st, err := s.parseOne(text)
	if err != nil {
		return nil, nil, err
	}
	switch n := st.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt, *ast.InsertStmt, *ast.UpdateStmt, *ast.DeleteStmt, *ast.DoStmt, *ast.CallStmt:
	case *ast.ShowStmt:
		switch n.Tp {
		case ast.ShowDatabases, ast.ShowProcessList, ast.ShowWarnings, ast.ShowErrors, ast.ShowTables:
			// answered by the proxy, which a backend-side statement would bypass
			return nil, nil, sqlerr.NotSupported("%s of a SHOW statement the proxy answers itself", what)
		}
	default:
		if err := barrier.Statement(st); err != nil {
			return nil, nil, err
		}
		return nil, nil, sqlerr.New(sqlerr.ErUnsupportedPS, "This command is not supported in the prepared statement protocol yet (%s of this statement through shardproxy)", what)
	}
	p, err := s.describe(snap, st, text)
	if err != nil {
		return nil, nil, err
	}
	r, ok := plan.RouteOf(p)
	if !ok || r.Dynamic || !r.Names.Empty() {
		return nil, nil, sqlerr.NotSupported("%s of a statement the proxy must route or rewrite at each execution (sharded or broadcast tables, session functions, information_schema); use the binary protocol's prepared statements", what)
	}
	return st, r, nil
}
