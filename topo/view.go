package topo

import (
	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/pool"
	"github.com/shardproxy/shardproxy/rules"
)

// BackendInfo is a read-only view of one backend (for the admin API).
type BackendInfo struct {
	Name, Addr string
	// Role is RolePrimary when the backend is the current primary of at least one shard.
	Role rules.Role
	// Shards names the shards the backend serves now (as primary or replica).
	Shards []string
	Pool   pool.Stats
	// Fenced says why the backend gets no statement ("" when it is not fenced).
	Fenced string
	// Health is the backend's latest probe (zero State: not probed); Health.Replica holds
	// its replication threads, positions and lag.
	Health health.Status
	// Warning names the settings a primary lacks for failover without loss ("" if none).
	Warning string
}

// ShardInfo is a read-only view of one shard's current roles (for the admin API).
type ShardInfo struct {
	Name, Database string
	Primary        string // "" while the shard has no writable primary
	Replicas       []string
	Mode           string // failover mode: none or promote
	// Failover describes the last failover: a promotion, or why one was refused or failed.
	Failover string
	Waiting  int // statements waiting for a writable primary now
}

// Backends returns a view of every backend, by name.
func (t *Topology) Backends() []BackendInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]BackendInfo, 0, len(t.backends))
	for _, name := range sortedNames(t.backends) {
		m := t.backends[name]
		bi := BackendInfo{Name: name, Addr: m.cfg.Addr, Role: rules.RoleReplica, Pool: m.pool.Stats(),
			Fenced: t.fenced[name], Health: t.health[name], Warning: t.warned[name]}
		for _, sn := range sortedNames(t.shards) {
			st := t.shards[sn]
			switch {
			case st.primary == name:
				bi.Role = rules.RolePrimary
				bi.Shards = append(bi.Shards, sn)
			case containsName(st.replicas, name):
				bi.Shards = append(bi.Shards, sn)
			}
		}
		out = append(out, bi)
	}
	return out
}

// Shards returns a view of every shard, by name.
func (t *Topology) Shards() []ShardInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]ShardInfo, 0, len(t.shards))
	for _, name := range sortedNames(t.shards) {
		st := t.shards[name]
		out = append(out, ShardInfo{Name: name, Database: st.database, Primary: st.primary, Replicas: append([]string(nil), st.replicas...),
			Mode: st.fo.Mode, Failover: st.failover, Waiting: t.waiting[name]})
	}
	return out
}

func containsName(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}
