// Package health probes every backend on a short interval, each probe bounded by its own
// short timeout (a hung server, TCP open and no answer, is caught as fast as a refused
// connection), over one probe connection per backend. It keeps, per backend, a state
// (up, suspect, down) with the reason and time of its last change, and what a probe sees:
// read_only, GTID positions, semi-synchronous replication settings and status, and for a
// replica its replication threads, Gtid_IO_Pos (received), gtid_slave_pos (applied) and its
// lag in milliseconds, read from a heartbeat table the checker writes on each primary.
//
// It decides nothing about routing: every probe result is handed to the Publish function of
// its Options (topo's). The Checker owns one goroutine per backend (and one per heartbeat);
// SetTargets stops those of backends left out, Close stops and waits for them all. SetTiming
// changes the probe interval, timeout and failures-before-down of a running Checker (a
// configuration reload): probes waiting for their next turn take it at once.
//
// Imports: the standard library and go-mysql's client. Never router, topo or pool.
package health
