// Package plan holds the primitives a statement's route plan is made of: where it goes and
// what each shard is sent, as typed values that describe themselves.
//
//   - Route: one statement to one shard (with, for a prepared statement routed by its ?
//     shard key, the Binding that places each execution);
//   - Passthrough: the client's statement text sent unchanged to one shard (nothing
//     renamed, no session value written in, nothing bound at execution): a Route, run as one
//     (RouteOf is the Route of either);
//   - Scatter: one statement per shard, the results merged by the proxy: its Merge is the
//     merge program (sorted or interleaved streams, groups and aggregates, DISTINCT in two
//     levels, a RowProgram computing expressions over aggregates and HAVING, a sort over
//     merged groups, the limit; merge.go), compiled by router/planner and run by
//     router/engine's MergeRows;
//   - MultiWrite: a write spanning shards, in branches, committed atomically (its Commit
//     protocol: one local transaction, or XA two-phase commit with a coordinator);
//   - DDL: a table's DDL fanned out to each physical copy, one at a time;
//   - Local: a statement the proxy answers itself (SHOW DATABASES), its result planned.
//
// Each primitive carries the Attrs of its statement (state left in the backend session,
// session values embedded, the logical-name translation of its results) and describes
// itself (Describe): EXPLAIN SHARDS and the planner's golden tests print that Description.
// Other statements the proxy handles itself (SET, USE, KILL, SHOW PROCESSLIST, transaction
// control) are answered by the session before planning.
//
// It owns the plan's shape only: planning is router/planner's, execution the session's
// (package router dispatches on the primitive's type) and router/engine's (the merge). Primitives are built by the planner
// and read-only once planned; they are safe to share between goroutines then.
//
// It may import rules, wire, merge (the merge's aggregate functions and kinds) and
// router/introspect (the translations a plan carries); never router, router/planner,
// router/engine or router/txn, which may import it.
package plan
