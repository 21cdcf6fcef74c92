package engine

import (
	"context"
	"time"
)

// A statement whose context ends (its deadline, KILL, the client going away) is cut short
// in one of two ways, both armed before the exchange starts and stopped after it:
//
//   - Watch: the connection's deadline moves into the past, the exchange fails at once and
//     the connection is marked broken (for exchanges whose answer is not worth waiting for);
//   - Interrupt: the statement is killed on the server that runs it (the caller's kill, KILL
//     QUERY over a separate connection) and its own answer is drained within a bound, so
//     the connection survives unless the server does not answer in time.

// Watch makes I/O on c return as soon as ctx is done, by moving its deadline into the past.
// The returned stop must be called when the exchange is over; it reports whether ctx fired
// (in which case c is marked broken: it stopped in the middle of a response).
func Watch(ctx context.Context, c Conn) (stop func() bool) {
	if ctx.Done() == nil {
		return func() bool { return false }
	}
	nc := c.Wire().NetConn()
	cancel := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	return func() bool {
		if cancel() {
			return false
		}
		c.MarkBroken()
		return true
	}
}

// Interrupter stops a backend statement when its context ends, without giving up the
// connection (see Interrupt). Stop must be called once the exchange is over.
type Interrupter struct {
	c      Conn
	stopFn func() bool
	killed chan struct{} // closed when the kill is done
	err    error         // of the kill; written before killed is closed
}

// Interrupt arms an Interrupter for the exchange about to start on c: when ctx ends, c's
// reads and writes get drain to finish and kill runs (in a goroutine owned by Stop, which
// waits for it).
func Interrupt(ctx context.Context, c Conn, drain time.Duration, kill func() error) *Interrupter {
	it := &Interrupter{c: c}
	if ctx.Done() == nil {
		return it
	}
	nc := c.Wire().NetConn()
	it.killed = make(chan struct{})
	it.stopFn = context.AfterFunc(ctx, func() {
		defer close(it.killed)
		_ = nc.SetDeadline(time.Now().Add(drain))
		it.err = kill()
	})
	return it
}

// Stop ends the watch and reports whether ctx ended during the exchange. If it did, Stop
// waits for the kill to finish (so it cannot hit a later statement), clears the drain
// deadline, and marks the connection broken if the kill failed: the statement may still run.
func (it *Interrupter) Stop() bool {
	if it.stopFn == nil || it.stopFn() {
		return false
	}
	<-it.killed
	if it.err != nil {
		it.c.MarkBroken()
	} else if !it.c.Broken() {
		_ = it.c.Wire().NetConn().SetDeadline(time.Time{})
	}
	return true
}
