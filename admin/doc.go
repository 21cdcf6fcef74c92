// Package admin is the proxy's admin HTTP server: a JSON API (status, reloads, backends,
// shards, rules, client sessions, route plans, pending XA branches; reload, drain a backend,
// kill a session), a server-rendered status page at "/", Prometheus metrics at /metrics,
// and /healthz and /readyz for load balancers.
//
// Access is by bearer tokens whose SHA-256 the configuration holds, with two roles: read
// (every GET) and admin (also POST). /metrics, /healthz and /readyz may be left open.
//
// It imports only the standard library and the small interfaces it defines (Proxy,
// Backends, Sessions, ...), which cmd/shardproxy satisfies from the rules store, the pools,
// the protocol server and the router. Nothing here reads configuration or touches a backend
// directly.
package admin
