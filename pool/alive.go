package pool

import (
	"crypto/tls"
	"errors"
	"syscall"
)

// peeker looks at a connection's socket without reading from it: one non-blocking
// recv(MSG_PEEK). It is built once per connection (its callback and the socket's RawConn
// are kept), so a peek allocates nothing. The zero value peeks nothing (closed is false).
type peeker struct {
	raw    syscall.RawConn // nil: the connection has no socket to peek at (a test pipe)
	fn     func(fd uintptr)
	closed bool // the last peek's answer; set by fn
}

// init prepares the peeker for c's socket.
func (pk *peeker) init(c *Conn) {
	nc := c.nc
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	pk.raw = raw
	pk.fn = func(fd uintptr) {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Nothing to read is the only healthy answer: end of stream, a reset, or bytes nobody
		// asked for all mean the connection is done.
		pk.closed = !errors.Is(err, syscall.EAGAIN)
	}
}

// closedByServer reports whether the server closed c or sent something unasked while no
// command was outstanding (a KILL, wait_timeout, a restart; MariaDB 10.11 closes a killed
// idle connection without a packet): either way it must not carry a command. It is one
// non-blocking peek at the socket, made each time the pool hands c out (Pool.healthy).
func (c *Conn) closedByServer() bool {
	if c.wc.Buffered() > 0 {
		return true
	}
	if c.peek.raw == nil {
		return false
	}
	c.peek.closed = false
	if err := c.peek.raw.Control(c.peek.fn); err != nil {
		return true // the socket is closed on our side
	}
	return c.peek.closed
}
