package router

import "github.com/shardproxy/shardproxy/router/engine"

// The router executes against the engine's backend seam; these names keep its own code
// short. Implementations (topo) import router/engine, never router.
type (
	// Backend hands out shard connections (engine.Backend).
	Backend = engine.Backend
	// PreferringBackend can hand back a connection released earlier (engine.PreferringBackend).
	PreferringBackend = engine.PreferringBackend
	// Conn is one backend connection (engine.Conn).
	Conn = engine.Conn
	// BackendStmt is a statement prepared on one backend connection (engine.Stmt).
	BackendStmt = engine.Stmt
	// ReplicaBackend serves reads from replicas (engine.ReplicaBackend).
	ReplicaBackend = engine.ReplicaBackend
	// ReplicaRead is what a read sent to a replica requires of it (engine.ReplicaRead).
	ReplicaRead = engine.ReplicaRead
)
