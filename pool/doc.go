// Package pool keeps per-backend pools of MySQL connections for the proxy.
//
// A Pool dials one backend (host:port) with go-mysql's client for the handshake only, then
// does all further I/O through a wire.Conn on the same socket, so callers relay raw packets.
// It enforces MaxOpen/MaxIdle/MinIdle, a jittered MaxLifetime, an IdleTimeout, a bounded wait
// for a free connection (FIFO waiters, LIFO idle stack), a COM_PING check of connections that
// sat idle, and a COM_RESET_CONNECTION of connections whose session state is unknown or that
// come back inside a transaction. KillQuery interrupts a running statement over a separate
// short-lived connection; Conn.Exec honours its context by unblocking the socket. Each
// Conn carries its holder's bookkeeping (State, a wire.ConnState): Release reads its broken
// and dirty marks and the status, a reset clears its variables and prepared statements.
//
// Each Pool owns exactly one maintenance goroutine, started by New and stopped (and waited
// for) by Close. There is no package-level mutable state.
//
// Backend connections negotiate classic EOF-terminated result sets (no DEPRECATE_EOF, no
// QUERY_ATTRIBUTES) and MULTI_RESULTS/PS_MULTI_RESULTS (stored procedures), so their packets
// can be relayed unchanged to clients, which never get those capabilities either.
//
// Backend errors keep their identity: a backend ERR (at handshake or from Conn.Exec) is
// returned as a wrapped *sqlerr.Error with the backend's code and SQLSTATE.
//
// Imports: the standard library, go-mysql's client and mysql packages (handshake and
// constants), the TiDB parser's charset tables (to validate Options.Collation; go-mysql's
// client links them anyway), wire and sqlerr. Never router, protocol, rules or health.
package pool
