package rules

// Role is what a statement needs from a shard's backends: its writable primary or one of
// its replicas. The router asks for a role; the topology decides which backend plays it now.
type Role uint8

// Roles.
const (
	// RolePrimary is the shard's writable primary (the zero value).
	RolePrimary Role = iota
	// RoleReplica is any usable replica of the shard (read-only work).
	RoleReplica
)

// String returns "primary" or "replica".
func (r Role) String() string {
	if r == RoleReplica {
		return "replica"
	}
	return "primary"
}
