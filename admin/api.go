package admin

import (
	"context"
	"time"
)

// Status is the proxy's identity and configuration state.
type Status struct {
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	Uptime    string    `json:"uptime"`
	// Config is where the configuration comes from: "file:PATH" or "etcd:PREFIX".
	Config     string `json:"config_source"`
	Revision   int64  `json:"config_revision"`
	Digest     string `json:"config_sha256"`
	LastReload Reload `json:"last_reload"`
	// Shared is the topology shared through etcd with the other proxies (nil: this proxy
	// acts alone).
	Shared *SharedTopology `json:"shared_topology,omitempty"`
}

// SharedTopology is this proxy's part in a topology shared by several proxies.
type SharedTopology struct {
	ProxyID string `json:"proxy_id"`
	// Leading: this proxy is the elected leader (it alone promotes and switches over).
	Leading     bool   `json:"leading"`
	Leader      string `json:"leader"`
	LeaderEpoch int64  `json:"leader_epoch"`
	// Version is the shared topology's version this proxy applied last.
	Version       uint64 `json:"topology_version"`
	RefusedWrites uint64 `json:"refused_writes"`
}

// Reload is one reload attempt.
type Reload struct {
	Time            time.Time `json:"time"`
	Trigger         string    `json:"trigger"`
	Result          string    `json:"result"` // applied, unchanged, rejected, failed
	Revision        int64     `json:"revision"`
	Digest          string    `json:"sha256,omitempty"`
	Error           string    `json:"error,omitempty"`
	RestartRequired []string  `json:"restart_required,omitempty"`
}

// Proxy is the process as a whole.
type Proxy interface {
	Status() Status
	// Reloads are recent reload attempts, most recent last.
	Reloads() []Reload
	// Reload fetches and applies the configuration now.
	Reload(ctx context.Context) Reload
	// Ready reports whether the proxy can serve: a configuration is loaded and every shard
	// has a usable primary; otherwise why not.
	Ready(ctx context.Context) (bool, string)
}

// Pool is a backend's connection pool.
type Pool struct {
	MaxOpen         int     `json:"max_open"`
	Open            int     `json:"open"`
	Idle            int     `json:"idle"`
	InUse           int     `json:"in_use"`
	Waiting         int     `json:"waiting"`
	WaitCount       uint64  `json:"waits_total"`
	WaitSeconds     float64 `json:"wait_seconds_total"`
	AcquireTimeouts uint64  `json:"acquire_timeouts_total"`
	DialErrors      uint64  `json:"dial_errors_total"`
}

// Backend is one MySQL/MariaDB server.
type Backend struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
	// Roles are "primary of s0", "replica of s1", as the topology has them now.
	Roles []string `json:"roles"`
	// State is online, offline (taken offline by an operator) or "fenced: why".
	State string `json:"state"`
	// Health is the last probe's verdict (unknown, up, suspect, down) and why.
	Health string `json:"health"`
	Reason string `json:"reason,omitempty"`
	// LagSeconds is a replica's replication lag (nil: not a replica, or unknown).
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
	// Warning names settings a primary lacks for failover without loss.
	Warning string `json:"warning,omitempty"`
	Pool    *Pool  `json:"pool,omitempty"` // nil: no pool
}

// Backends lists and drains backends.
type Backends interface {
	Backends() []Backend
	// SetOffline drains a backend: no new statements, in-flight ones finish, its
	// connections close. It returns the connections still open when it stopped waiting.
	SetOffline(ctx context.Context, name string) (open int, err error)
	SetOnline(name string) error
}

// Shard is a replication group and where its rows live.
type Shard struct {
	Name     string   `json:"name"`
	Database string   `json:"database"`
	Primary  string   `json:"primary"`
	Replicas []string `json:"replicas"`
	// Databases are the logical databases the shard serves.
	Databases []string `json:"logical_databases"`
	// Failover describes the shard's last failover ("" for none); Waiting counts the
	// statements waiting for a writable primary now.
	Failover string `json:"failover,omitempty"`
	Waiting  int    `json:"waiting"`
}

// Failover is one failover event of the topology.
type Failover struct {
	Time time.Time `json:"time"`
	// Kind is promoted (a replica promoted by the proxy or followed), refused (automatic
	// promotion refused: a replica may lack acknowledged writes), failed (a promotion step
	// failed; retried) or settings (a primary runs without the settings failover needs).
	Kind       string   `json:"kind"`
	Mode       string   `json:"mode,omitempty"` // promoted: promote or follow
	Backend    string   `json:"backend"`        // the old primary (settings: the primary concerned)
	NewPrimary string   `json:"new_primary,omitempty"`
	Shards     []string `json:"shards,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	// Seconds is, for promoted, the time from the old primary found lost to the new one in use.
	Seconds float64 `json:"seconds,omitempty"`
}

// Session is one client connection.
type Session struct {
	ID      uint32 `json:"id"`
	User    string `json:"user"`
	Host    string `json:"host"`
	DB      string `json:"db"`
	Command string `json:"command"`
	Seconds int64  `json:"time"`
	State   string `json:"state"`
	// Digest is the running statement with its literals replaced by "?" (never raw values).
	Digest string `json:"statement_digest,omitempty"`
}

// Sessions lists and kills client connections.
type Sessions interface {
	Sessions() []Session
	// Kill interrupts session id's statement (query) or closes the session; false: no such session.
	Kill(id uint32, query bool) bool
}

// PlanStep is one line of a route plan, as EXPLAIN SHARDS shows it.
type PlanStep struct {
	Step   string `json:"step"`
	Shard  string `json:"shard,omitempty"`
	Detail string `json:"detail"`
}

// Planner explains how a statement would be routed, without running it.
type Planner interface {
	Explain(ctx context.Context, user, db, sql string) ([]PlanStep, error)
}

// XABranch is a prepared XA branch of this proxy fleet waiting for recovery.
type XABranch struct {
	Backend string `json:"backend"`
	Xid     string `json:"xid"`
}

// XA lists prepared branches awaiting recovery.
type XA interface {
	Pending(ctx context.Context) ([]XABranch, error)
}

// Token is an accepted bearer token: the hex SHA-256 of its text and its role.
type Token struct {
	Name, Role, SHA256 string
}

// Access is the live access configuration (it may change on reload).
type Access interface {
	// Tokens returns the tokens and the endpoints open without one (metrics, healthz, readyz).
	Tokens() (tokens []Token, open []string)
}
