// Package plan holds the primitives a statement's route plan is made of: where it goes and
// what each shard is sent, as typed values that describe themselves.
//
//   - Route: one statement to one shard (with, for a prepared statement routed by its ?
//     shard key, the Binding that places each execution);
//   - Passthrough: the client's statement text sent unchanged to one shard (nothing
//     renamed, no session value written in, nothing bound at execution): a Route, run as one
//     (RouteOf is the Route of either);
//   - Scatter: one statement per shard, the results merged by the proxy (the Merge);
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
// It owns the plan's shape only: planning is package router's planner, execution its
// session (which dispatches on the primitive's type). Primitives are built by the planner
// and read-only once planned; they are safe to share between goroutines then.
//
// It may import rules, wire and router/introspect (the translations a plan carries); never
// router, router/engine or router/txn, which may import it.
package plan
