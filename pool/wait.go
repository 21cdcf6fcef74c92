package pool

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"time"
)

// grant is what an Acquire receives: a connection, a slot to dial (already counted in open
// and dialing), or an error.
type grant struct {
	c    *Conn
	dial bool
	err  error
}

// waiter is one Acquire waiting for a grant. Its channel has room for exactly one grant, so
// granting never blocks the granter (who holds the pool's mutex).
type waiter struct {
	ch   chan grant
	elem *list.Element // in the queue; nil once popped or removed
}

// waitQueue is the FIFO of waiters. Guarded by Pool.mu; the zero value is empty.
type waitQueue struct{ l list.List }

func (q *waitQueue) len() int { return q.l.Len() }

func (q *waitQueue) push() *waiter {
	w := &waiter{ch: make(chan grant, 1)}
	w.elem = q.l.PushBack(w)
	return w
}

// pop removes and returns the oldest waiter, or nil.
func (q *waitQueue) pop() *waiter {
	e := q.l.Front()
	if e == nil {
		return nil
	}
	w := q.l.Remove(e).(*waiter)
	w.elem = nil
	return w
}

// remove takes w out of the queue and reports whether it was still there (false: a grant
// has been or is being sent to it).
func (q *waitQueue) remove(w *waiter) bool {
	if w.elem == nil {
		return false
	}
	q.l.Remove(w.elem)
	w.elem = nil
	return true
}

// wait blocks until w is granted something, ctx is done or AcquireTimeout elapses.
func (p *Pool) wait(ctx context.Context, w *waiter) (grant, error) {
	start := time.Now()
	timer := time.NewTimer(p.opts.AcquireTimeout)
	defer timer.Stop()
	var err error
	select {
	case g := <-w.ch:
		p.waited(start, nil)
		return g, g.err
	case <-ctx.Done():
		err = fmt.Errorf("pool: acquire on %s: waited %s: %w", p.opts.Addr, time.Since(start).Round(time.Millisecond), ctx.Err())
	case <-timer.C:
		err = fmt.Errorf("%w: %s, waited %s, MaxOpen %d", ErrAcquireTimeout, p.opts.Addr, time.Since(start).Round(time.Millisecond), p.opts.MaxOpen)
	}
	p.mu.Lock()
	removed := p.waiters.remove(w)
	p.mu.Unlock()
	if !removed {
		// A grant raced with the timeout and is ours: use it if ctx still allows, else
		// give it back.
		g := <-w.ch
		if g.err != nil || ctx.Err() == nil {
			p.waited(start, nil)
			return g, g.err
		}
		p.giveBack(g)
	}
	p.waited(start, err)
	return grant{}, err
}

// giveBack returns an unused grant to the pool.
func (p *Pool) giveBack(g grant) {
	switch {
	case g.c != nil:
		p.Release(g.c)
	case g.dial:
		p.mu.Lock()
		p.dialing--
		p.dropLocked()
		p.mu.Unlock()
	}
}

// waited records the end of a wait that began at start and ended with err (nil: granted).
func (p *Pool) waited(start time.Time, err error) {
	d := time.Since(start)
	p.mu.Lock()
	p.st.waitDuration += d
	switch {
	case err == nil:
	case errors.Is(err, ErrAcquireTimeout):
		p.st.acquireTimeouts++
	default:
		p.st.waitCanceled++
	}
	p.mu.Unlock()
}
