// Package txn owns the transactions of the proxy's sessions: who takes part in one and what
// it may do, and how writes spanning shards commit atomically.
//
//   - Txn (txn.go) is one session's transaction bookkeeping: the statement that began it,
//     the shards it wrote (the one-writer rule of today: a transaction writes to one shard;
//     a write to a second one is refused), its savepoints, and what a shard joining late
//     replays (Join). The session keeps one per client connection.
//   - The participants (participants.go) are the backend connections the session keeps per
//     shard; Open, EndAll, SendAll and Rollback end or steer the transaction on all of them
//     (the writing shard commits last) and say what they answered.
//   - Coordinator (xa.go) runs the commit protocol of a write spanning shards (autocommit):
//     the first branch coordinates in a local transaction whose decision row is the commit
//     point, the others are prepared XA branches. It names transactions (gtrid, bqual),
//     writes the decision row, maps the outcome to an error and a metric, and talks to each
//     branch through the small Branch interface (a connection that runs the branch's
//     statements and the protocol's own), never to a session.
//   - Recoverer (recover.go) resolves the prepared branches a crashed or cut-off proxy left,
//     from the decision log (DecisionDDL) on the coordinators' servers.
//
// What a statement runs, how a connection is acquired and given back, and the client's
// answer stay with the session facade in package router, which calls this package.
//
// Interactive transactions spanning shards would grow from here: Txn.Write is the one place
// that refuses a second writing shard, and the Coordinator already commits branches that
// each ran on their own connection; the session's pinned connections would become the
// branches of such a transaction, its COMMIT the Coordinator's.
//
// It may import router/engine (Conn, Backend, the client protocol helpers), rules, sqlerr
// and wire; never package router, topo or pool.
package txn
