// Package engine is the router's edge to the backends: the Backend interface the router
// executes plans against (a shard and a role in, a connection that knows its own server
// and can kill its own query out) and the Conn it hands out.
//
// It owns the types of that seam so that the packages below the router (topo) implement
// them without importing the router: nothing but cmd/shardproxy imports package router.
// The execution of plan primitives (relaying results, binary rows, cancellation) moves
// here from package router step by step (issue 9).
//
// It may import rules and wire; never router, topo or pool.
package engine
