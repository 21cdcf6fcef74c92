package router

import (
	"github.com/shardproxy/shardproxy/router/barrier"
)

// The privilege barrier (router/barrier; docs/architecture.md, invariant 7) stands on every
// path by which SQL reaches a backend. TestBarrierEntryPaths drives a session through each
// with a statement the barrier refuses; a new path belongs there.
//
//   - Text a client sends (COM_QUERY: session.go; COM_STMT_PREPARE: prepare.go; SQL-level
//     PREPARE ... FROM: prepare_sql.go; EXECUTE IMMEDIATE: execute_immediate.go; each piece
//     of a batch the parser cannot read whole: batch.go; SET STATEMENT ... FOR and PREPARE
//     through router/planner's Planner.Nested) goes through Facts.Text before it is parsed,
//     so the parser reads what the backend runs, and Facts.Grammar after.
//   - Every parsed statement is planned, and planning starts with barrier.Statement and the
//     analyzer's walk (plan.go), which asks barrier.Schema, Table and Function of every
//     name and function, and the rules of every other database. Statements that reach a
//     backend without a plan pass the same checks where they branch off: DDL fanned out to
//     sharded tables (ddl.go), LOCK TABLES (lock.go, the analyzer), LOAD DATA (loaddata.go
//     plans it), EXPLAIN (router/planner's PlanExplain plans the explained statement), the
//     statements and expressions of stored program bodies (router/planner's
//     CheckRoutineBody, node by node), the expressions of a RETURNING clause
//     (router/planner's CheckReturning), and the subqueries the proxy runs first
//     (subquery_bind.go: each is planned).
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
