package pool

import (
	"crypto/tls"
	"errors"
	"syscall"
	"time"
)

// peekAfterIdle: a connection idle longer than this is checked, without a round trip, for
// having been closed by the server (KILL, wait_timeout, restart) before it is handed out.
const peekAfterIdle = 10 * time.Millisecond

// closedByServer reports whether the server closed c or sent something unasked (such as the
// error packet of a KILL) while it sat idle: either way it must not carry a command. It is
// one non-blocking peek at the socket.
func (c *Conn) closedByServer() bool {
	if c.wc.Buffered() > 0 {
		return true
	}
	nc := c.nc
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	_ = raw.Control(func(fd uintptr) {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Nothing to read is the only healthy answer: end of stream, a reset, or bytes nobody
		// asked for all mean the connection is done.
		closed = !errors.Is(err, syscall.EAGAIN)
	})
	return closed
}
