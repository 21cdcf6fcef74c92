// Package coord lets several proxies that share an etcd (the configuration source of
// rules/source) share one runtime topology: they campaign in an etcd election (one leader per
// configuration prefix, go.etcd.io/etcd/client/v3/concurrency, on a lease of a couple of
// seconds), only the leader decides promotions, follow-mode moves and switchovers, and it
// publishes each decision (every shard's primary and replicas, the fenced backends, a
// version) at PREFIX + KeyTopology in a transaction that succeeds only while its election key
// still exists with the create revision it won with (its epoch): a deposed leader's write is
// refused. Every proxy watches that key and hands each new version to the topology, in order.
//
// Dependency direction (docs/architecture.md): coord imports topo (the Shared value, the
// errors and the interfaces it satisfies) and the etcd client; only cmd/shardproxy imports
// coord.
package coord
