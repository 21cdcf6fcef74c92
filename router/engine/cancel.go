package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shardproxy/shardproxy/sqlerr"
)

// A statement whose context ends (its deadline, KILL, the client going away) is cut short
// by one mechanism, the Interrupter: armed before the exchange starts, stopped (Stop) after
// it, and given the kill that stops the statement on the server that runs it. It has two
// modes, which differ in what they give up:
//
//   - Watch gives up the connection: its deadline moves into the past, the exchange fails
//     at once, and Stop marks the connection broken and then runs the kill (for exchanges
//     whose answer is not worth waiting for);
//   - Interrupt keeps the connection: the kill runs as soon as ctx ends and the statement's
//     own answer is drained within a bound, so the connection survives unless the kill
//     fails.
//
// Either way the kill runs at most once, only if ctx ended before Stop, and never after
// Stop has returned.

// Interrupter stops a backend statement when its context ends (see Watch and Interrupt).
// Stop must be called once the exchange is over.
type Interrupter struct {
	c      Conn
	kill   func() error  // nil: none (Watch only)
	stopFn func() bool   // ends the watch on ctx; nil when ctx cannot end
	killed chan struct{} // Interrupt: closed when the kill is done; nil for Watch
	err    error         // of Interrupt's kill; written before killed is closed
}

// Watch arms an Interrupter that makes I/O on c fail as soon as ctx ends, by moving c's
// deadline into the past. If ctx ended, Stop marks c broken (it stopped in the middle of
// a response) and runs kill, which may be nil when giving up the connection is enough.
func Watch(ctx context.Context, c Conn, kill func() error) *Interrupter {
	it := &Interrupter{c: c, kill: kill}
	if ctx.Done() == nil {
		return it
	}
	nc := c.Wire().NetConn()
	it.stopFn = context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	return it
}

// Interrupt arms an Interrupter for the exchange about to start on c: when ctx ends, c's
// reads and writes get drain to finish and kill runs (in a goroutine owned by Stop, which
// waits for it).
func Interrupt(ctx context.Context, c Conn, drain time.Duration, kill func() error) *Interrupter {
	it := &Interrupter{c: c, kill: kill}
	if ctx.Done() == nil {
		return it
	}
	nc := c.Wire().NetConn()
	it.killed = make(chan struct{})
	it.stopFn = context.AfterFunc(ctx, func() {
		defer close(it.killed)
		_ = nc.SetDeadline(time.Now().Add(drain))
		it.err = it.kill()
	})
	return it
}

// Stop ends the watch and reports whether ctx ended during the exchange. If it did, the
// statement has been killed when Stop returns: a Watch's connection is marked broken and
// its kill run; an Interrupt's kill is waited for (so it cannot hit a later statement),
// its drain deadline cleared, and its connection marked broken if the kill failed (the
// statement may still run).
func (it *Interrupter) Stop() bool {
	if it.stopFn == nil || it.stopFn() {
		return false
	}
	if it.killed == nil { // Watch
		it.c.State().MarkBroken()
		if it.kill != nil {
			_ = it.kill()
		}
		return true
	}
	<-it.killed
	if it.err != nil {
		it.c.State().MarkBroken()
	} else if !it.c.State().Broken() {
		_ = it.c.Wire().NetConn().SetDeadline(time.Time{})
	}
	return true
}

// interruptedError is what the client gets for a statement whose context ended: 3024 for a
// deadline, 1317 for a cancellation (KILL QUERY, client gone, shutdown). The cause stays
// visible to errors.Is.
func InterruptedError(ctx context.Context) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", sqlerr.New(sqlerr.ErQueryTimeout,
			"Query execution was interrupted, maximum statement execution time exceeded"), cause)
	}
	return fmt.Errorf("%w: %w", sqlerr.New(sqlerr.ErQueryInterrupted, "Query execution was interrupted"), cause)
}
