// Package protocol is the proxy's MySQL server side: the listener, the handshake with
// mysql_native_password and caching_sha2_password (fast path, full path over TLS or RSA),
// TLS, the command loop with buffered writes flushed before each read, prepared-statement
// bookkeeping (types kept for re-execution, long data) and the error edge that turns Go
// errors into ERR packets with errno and SQLSTATE. It owns connection ids: Server.Processes
// lists the connections, KillQuery and KillConnection cancel a command or close a connection
// (process.go); a command's context is cancelled with a cause saying why (sqlerr).
//
// It knows nothing of shards, pools or SQL: statements go to a Session from the Handler
// given to NewServer. It may import go-mysql's constants, wire and sqlerr; never router,
// pool or rules.
package protocol
