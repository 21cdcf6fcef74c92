package engine

import (
	"context"
	"time"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// Backend hands out connections to shards. The topo package satisfies it (asserted in
// cmd/shardproxy); it must be safe for concurrent use.
type Backend interface {
	// Acquire returns a connection to the backend that plays role for shard now (its
	// current primary, or a usable replica), bounded by ctx.
	Acquire(ctx context.Context, shard *rules.Shard, role rules.Role) (Conn, error)
	// Release gives a connection back; broken or dirty ones are closed or reset.
	Release(c Conn)
}

// PreferringBackend is a Backend that can hand back a connection the session released
// earlier, when it is still idle and still plays role, so a client keeps meeting the same
// backend session.
type PreferringBackend interface {
	AcquirePreferring(ctx context.Context, shard *rules.Shard, role rules.Role, prefer Conn) (Conn, error)
}

// Conn is one backend connection, used by one session at a time. It is the connection
// and what it knows of the server session behind it (State); the engine speaks the client
// protocol over Wire, and nothing above the engine does.
type Conn interface {
	Wire() *wire.Conn // raw packets; ResetSeq before each command
	ID() uint32       // backend connection id
	// Server names the backend server this connection runs on (its config name).
	Server() string
	// KillQuery stops the statement this connection runs, on the server that runs it (KILL
	// QUERY over a separate connection), bounded by ctx. Unlike the other methods it may be
	// called from another goroutine while the holder uses the connection.
	KillQuery(ctx context.Context) error
	// Exec sends a text query, discards its rows and returns its final OK (a backend
	// error as a *sqlerr.Error), bounded by ctx.
	Exec(ctx context.Context, query string) (wire.OK, error)
	// State is the connection's bookkeeping, owned by the holder until Release: broken
	// (never reuse) and dirty (reset before reuse) marks, the last status flags, the
	// default database, the session variables applied (router's: name → SQL literal, never
	// modified in place) and the statements prepared (see StmtKey). A reset clears the
	// variables and statements.
	State() *wire.ConnState
}

// Stmt is a statement prepared on one backend connection: its id there and the counts of
// parameters and result columns the backend announced.
type Stmt = wire.Stmt

// ReplicaBackend is a Backend that serves reads from replicas (the read/write split): an
// optional capability, checked by type assertion.
type ReplicaBackend interface {
	// AcquireReplica returns a connection to a replica of shard that is up, applies
	// replication and lags less than r.MaxLag and, when r.After is set, has applied that
	// GTID position (it waits at most r.MaxLag for it); else a connection to the primary,
	// as Acquire(ctx, shard, rules.RolePrimary) would.
	AcquireReplica(ctx context.Context, shard *rules.Shard, r ReplicaRead) (Conn, error)
}

// ReplicaRead is what a read sent to a replica requires of it.
type ReplicaRead struct {
	MaxLag time.Duration
	// After is a MariaDB GTID position ("0-1-42") the replica must have applied: the
	// session's last write on the shard (read-your-writes). Empty: none.
	After string
}
