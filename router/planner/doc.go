// Package planner decides where a statement goes: statement + rules snapshot + a read-only
// view of the session (Planner) → a plan of router/plan primitives. It does no I/O and
// reaches no session: everything it reads of the session is a field of the Planner the
// session builds for the statement, and values only known at execution (bound parameters,
// LAST_INSERT_ID(), DATABASE(), CONNECTION_ID()) are bind variables of the plan, filled in
// by whoever executes it (BoundRoute, FillSessionVals).
//
// It owns:
//   - the analysis of a statement's tables, functions and session values (plan.go: Analyzer)
//     and the privilege barrier's call on it (router/barrier);
//   - routing to one shard by shard key, literal or ? (shard.go, prune.go, bind.go), writes
//     split over several shards (split.go), DDL fan-out (ddl.go), LOCK TABLES targets
//     (lock.go), stored programs' homes and what their bodies may name (stored.go), SHOW
//     DATABASES and the SHOW statements answered from one copy (show.go);
//   - scatter reads: which slots a SELECT needs (scatter_route.go), the statement each shard
//     runs and the merge program (a router/plan.Merge) router/engine runs over their rows
//     (scatter_shape.go, scatter.go; scatter_distinct.go: DISTINCT aggregates; aggexpr.go,
//     aggfunc.go, aggvalue.go, having.go: expressions over merged aggregates and HAVING,
//     compiled into the merge's row program, rowprog.go, which evaluates them per row);
//   - a prepared statement's bound route (bound.go): the plan of a statement routed by its
//     ? keys, resolved at each EXECUTE from the bound values without parsing again; and a
//     prepared SELECT over several shards (scatter_prepared.go: ScatterTemplate), each
//     shard's statement cut at its parameters, filled in and pruned at each EXECUTE;
//   - passthrough (passthrough.go): a route whose SQL is the client's text as received, and
//     binds nothing, is a plan.Passthrough;
//   - the text handling planning needs (biglist.go: long literal lists cut out before parsing
//     and put back when restoring).
//
// Planning rewrites the statement's tree while it restores each shard's SQL (physical table
// and database names, pushed-down LIMITs, bound subquery values); a prepared statement's
// tree is owned by its plan, which rewrites it again at each execution.
//
// It may import router/plan, router/barrier, router/introspect, router/sqlscan, merge, rules,
// sqlerr, wire and the TiDB parser; never router, router/engine, router/txn, topo or pool.
package planner
