// Package topo is the proxy's runtime view of its shards: for each shard, which backend is
// the writable primary now and which replicas it has, and a topology version that changes
// whenever that view does. It owns one connection pool per backend and implements the
// router engine's Backend interface (router/engine): the router asks for a shard and a role, never a backend by name.
//
// A reload hands a new rules snapshot to Topology.Apply: pools of backends whose settings did
// not change survive untouched; pools of removed or changed backends stop handing out
// connections, let the statements in flight on them finish (bounded by Options.DrainTimeout)
// and close, under the Topology's ownership (Close waits for them).
//
// A reload also applies every shard's failover settings and tells the health checker which
// backends to probe; what the probes said about a backend no longer probed is forgotten.
//
// Failover (failover.go) promotes a replica in place of a dead primary only when no
// acknowledged write can be missing: judged from the primary's semi-sync state when last
// seen, or, for a primary this proxy never reached, from its replicas' own view under the
// shard's declaration (coldstart.go).
//
// Read-only views (Backends, Shards, Version) are small value types for the admin API.
//
// Several proxies (shared.go): with a Coordinator (package coord, when the configuration
// comes from etcd) only the elected leader promotes, follows and switches over; it publishes
// each change of roles through the coordinator, which stores it only under the leader's
// epoch, and every proxy, the leader included, switches by applying what was published
// (ApplyShared). Without one, the proxy acts alone.
//
// Dependency direction (docs/architecture.md): topo imports pool, rules, sqlerr and
// router/engine (types only: the Backend and Conn interfaces it satisfies), never router
// itself. Nothing below it (pool, health) imports topo.
package topo
