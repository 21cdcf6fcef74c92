// Package planner decides where a statement goes: statement + rules snapshot + a read-only
// view of the session (Planner) → a plan of router/plan primitives. It does no I/O and
// reaches no session: everything it reads of the session is a field of the Planner the
// session builds for the statement, and values only known at execution (bound parameters,
// LAST_INSERT_ID(), DATABASE(), CONNECTION_ID()) are bind variables of the plan, filled in
// by whoever executes it (BoundRoute, fillSessionVals).
//
// It owns:
//   - the analysis of a statement's tables, functions and session values (analyzer.go:
//     Analyzer) and the privilege barrier's call on it (router/barrier);
//   - routing to one shard by shard key, literal or ? (shard.go, shard_nested.go, prune.go,
//     bind.go), writes split over several shards (split.go), DDL fan-out (ddl.go), LOCK
//     TABLES targets (lock.go), stored programs' homes and what their bodies may name
//     (stored.go), SHOW DATABASES, the SHOW statements answered from one copy and the
//     routine listings written as queries on information_schema, SHOW PACKAGE STATUS too
//     (show.go);
//   - scatter reads: which slots a SELECT needs (scatter_route.go), the statement each shard
//     runs and the merge program (a router/plan.Merge) router/engine runs over their rows
//     (scatter_shape.go, scatter.go; scatter_distinct.go: DISTINCT aggregates; aggexpr.go,
//     aggfunc.go, aggvalue.go, having.go: expressions over merged aggregates and HAVING,
//     compiled into the merge's row program, rowprog.go, which evaluates them per row);
//   - a prepared statement's description at PREPARE (bound.go: DescribePrepared) and its
//     bound route (bound.go): the plan of a statement routed by its ? keys, resolved at
//     each EXECUTE from the bound values without parsing again; and a prepared SELECT over
//     several shards (scatter_prepared.go: ScatterTemplate), each shard's statement cut at
//     its parameters, filled in and pruned at each EXECUTE; and a prepared multi-shard
//     write (bound_write.go: WriteRoute, branches kept and handed each EXECUTE's values;
//     MultiRoute, one embedding session values, split at each EXECUTE);
//   - passthrough (plan.go: finishRoute): a route whose SQL is the client's text as
//     received, and binds nothing, is a plan.Passthrough;
//   - the text handling planning needs (biglist.go: long literal lists cut out before parsing
//     and put back when restoring);
//   - the decisions the session asks of its Planner outside Plan, which it once made itself:
//     a statement's read/write split and whether a read may run again after a lost
//     connection (readsplit.go), the shard holding the user variables and the session values
//     a bound route fills in (sessionview.go), the table a LOAD DATA LOCAL loads on every
//     shard (checks.go: LoadTarget), the sharded table of an INSERT without a column list
//     whose columns the session reads (checks.go: UnnamedInsertTable);
//   - EXPLAIN SHARDS, EXPLAIN / ANALYZE of a statement (explain.go: the head cut off, the
//     statement planned, what each shard is asked), statements nested in others (nested.go:
//     the text of PREPARE ... FROM and SET STATEMENT ... FOR, which must route to one shard
//     as written, SET STATEMENT's assignments, and the expressions of a RETURNING clause;
//     returning.go: the clause cut off before parsing and put back on the plan), and the
//     prepare-time description of a statement whose subqueries the session binds at each
//     EXECUTE (subquery.go: DescribeBound);
//   - the MariaDB-only statements the parser cannot read (DDL shapes, column types, SELECT
//     ... INTO @var, SHOW CREATE TRIGGER | FUNCTION | EVENT, SETVAL with more arguments):
//     taken apart and planned through a statement it reads (mariadb_ddl.go,
//     mariadb_types.go, mariadb_shapes.go: a ShapePlan the session runs);
//   - stored programs the parser cannot read (CREATE / ALTER / DROP TRIGGER, FUNCTION,
//     EVENT): taken apart with a small lexer (program_parse.go, program_tokens.go), their
//     bodies checked, and placed: the statement each shard gets, one copy per slot table for
//     a trigger on a table per slot, named after its slot (program_targets.go). Parsing is
//     the caller's ParseFunc (the session's parser, its sql_mode); the session runs the
//     targets.
//
// Planning leaves the caller's tree as it found it. Writing each shard's SQL edits the tree
// in place (physical table and database names and aliases, pushed-down LIMITs, hidden
// columns and the shards' ORDER BY and GROUP BY, the rows of a split INSERT, session values
// and information_schema literals written in, fields named by their text); every such edit
// goes through an edits log (edits.go) that each planning entry (Plan, PlanTableDDL,
// PlanDDL, PlanLock, DescribeNested, CheckRoutineBody, and those built on them:
// PlanExplain, Nested, CheckReturning, DescribeBound, CheckProgram, ProgramTargets;
// ShowDatabases and ScatterSlots edit nothing) undoes before it returns, so the tree can be
// planned again, as is, without parsing it again. Trees that are sent or kept as they are
// bound on purpose stay edited: those analysed with Analyze, DDLTargets or CheckLoad (the
// session values the analysis reads are written into the tree, for a caller that writes the
// tree itself: a scatter template's, a multi-shard write's, a DDL or LOAD DATA router
// sends), and the tree of a prepared statement's bound route (bound.go): at its first
// execution the route makes the analysis' edits again on the tree it kept, which from then
// on is the plan's; each execution writes its names and values into it and puts the names
// back.
//
// It may import router/plan, router/barrier, router/introspect, router/sqlscan, merge, rules,
// sqlerr, wire and the TiDB parser; never router, router/engine, router/txn, topo or pool.
package planner
