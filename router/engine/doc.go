// Package engine is the router's edge to the backends: the Backend interface the router
// executes plans against (a shard and a role in, a connection that knows its own server
// and can kill its own query out) and the Conn it hands out: six methods, the packets
// (Wire), the connection's id, server and kill, a text Exec, and its bookkeeping
// (State, a wire.ConnState: broken and dirty marks, status, database, variables, the
// prepared statements' cache), which is the same type whatever implements Conn.
//
// It owns the types of that seam so that the packages below the router (topo) implement
// them without importing the router: nothing but cmd/shardproxy imports package router.
//
// It is also the one place that speaks the MySQL client protocol to a backend: sending a
// command (SendCommand), relaying a command's results to the client packet by packet while
// checking each against the protocol (Relay, RelayResults), reading column definitions
// (ReadHeader) and a result's rows one at a time (RowStream), COM_FIELD_LIST
// (RelayFieldList), a query sent without copying it (SendQuery), a drain within a bound
// (Drain), preparing and executing a statement in the binary protocol
// (Prepare, ExecutePayload, StmtKey; the statements the cache drops are closed here), encoding rows the proxy builds (AppendTextRow,
// AppendBinaryRow), small text queries (QueryRows) and the client file of LOAD DATA LOCAL
// INFILE (ClientFile, FileCarrier).
//
// Cancellation lives here too (cancel.go), as one mechanism: a statement whose context ends
// (deadline, KILL, client gone) is cut short by an Interrupter, which is given the kill
// that stops the query on its own server and runs it at most once. Armed by Watch it gives
// the connection up (the exchange fails at once, the kill runs when it is over); armed by
// Interrupt it keeps it (the kill runs at once and the answer is drained).
//
// A backend's malformed or failed exchange marks the connection broken and wraps
// ErrBackendIO; its ERR packets come back as *sqlerr.Error.
// A panic recovered while working on a connection becomes Panicked's error.
//
// It runs a Scatter on the connections the session acquired for it (scatter.go: Gather:
// the statements sent, the column definitions read or probed, the rows merged by the
// Scatter's merge program and written as one result set, the streams drained; merge.go:
// MergeRows, plan.Merge's steps over the shards' row streams; merge_distinct.go: DISTINCT
// aggregates in two levels). The rest of the execution of plan primitives (one shard,
// multi-shard writes, DDL) lives in package router, whose session owns the connections,
// transaction and diagnostics they need.
//
// It may import router/plan, merge, rules, sqlerr and wire; never router, router/planner,
// topo or pool.
package engine
