package protocol

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// goneCheckDelay is how long a command runs before the connection starts watching for the
// client going away; shorter commands never pay for the watch.
const goneCheckDelay = 20 * time.Millisecond

// watchGone cancels a command's context when the client closes its connection while the
// command runs, so the backend work stops too. Nothing reads the socket during a command,
// so after goneCheckDelay a goroutine waits for it to become readable and peeks: end of
// stream or a reset means the client is gone; data (a pipelined command) means it is not.
// The returned stop ends the watch and waits for its goroutine.
func (c *conn) watchGone(cancel context.CancelFunc) (stop func()) {
	raw := rawConn(c.nc)
	if raw == nil {
		return func() {}
	}
	var (
		mu      sync.Mutex
		stopped bool
		done    chan struct{}
	)
	timer := time.AfterFunc(goneCheckDelay, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		done = make(chan struct{})
		go func() {
			defer close(done)
			if peekGone(raw) {
				c.log.Info("client went away during a statement; cancelling it")
				cancel()
			}
		}()
	})
	return func() {
		timer.Stop()
		mu.Lock()
		stopped = true
		d := done
		mu.Unlock()
		if d != nil {
			_ = c.nc.SetReadDeadline(time.Unix(1, 0)) // wakes the waiting peek
			<-d
			_ = c.nc.SetReadDeadline(time.Time{})
		}
	}
}

// rawConn returns the socket under nc (under TLS too), or nil.
func rawConn(nc net.Conn) syscall.RawConn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// peekGone waits until the socket is readable (or the read deadline passes) and reports
// whether the peer closed or reset it, without consuming any data.
func peekGone(raw syscall.RawConn) bool {
	gone := false
	err := raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
			return false // not readable yet: wait
		case err != nil:
			gone = true // reset
		case n == 0:
			gone = true // orderly close
		}
		return true
	})
	return gone && err == nil
}
