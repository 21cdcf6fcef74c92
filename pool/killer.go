package pool

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// A KILL QUERY needs a connection of its own to the backend. Dialing one when a statement's
// deadline passes costs a TCP connect and a full login, seconds on a loaded machine, and
// fails outright when the backend is at max_connections; meanwhile the statement's client
// waits. With Options.KillReserve the pool keeps one connection in reserve for KILL QUERY:
// dialed after the pool's first successful dial, checked with COM_PING every
// reserveCheckInterval, re-dialed when it breaks, and closed by Close. A KILL QUERY that
// finds the reserve in use (another kill) or missing falls back to a short-lived dial.

// reserveCheckInterval is how often the reserve connection is pinged (keeping it clear of
// the server's wait_timeout and noticing a dead one before a kill needs it).
const reserveCheckInterval = 30 * time.Second

// reserveRetry is the wait before dialing the reserve again after a failed dial.
const reserveRetry = time.Second

// killReserve is the pool's reserve connection for KILL QUERY; its keeper goroutine
// (keepReserve) is owned by the Pool.
type killReserve struct {
	mu    sync.Mutex
	conn  *Conn // idle reserve; nil while taken, being dialed or missing
	taken bool  // a KillQuery is using the reserve
	wake  chan struct{}
}

func newKillReserve() *killReserve { return &killReserve{wake: make(chan struct{}, 1)} }

// kick asks the keeper to dial the reserve if it is missing. It never blocks.
func (k *killReserve) kick() {
	if k == nil {
		return
	}
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// take returns the idle reserve connection, or nil.
func (k *killReserve) take() *Conn {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	c := k.conn
	if c != nil {
		k.conn, k.taken = nil, true
	}
	return c
}

// give puts back a reserve connection taken by take; a broken one (or any after the pool
// closed) is closed, and the keeper dials a new one.
func (p *Pool) giveReserve(c *Conn) {
	k := p.reserve
	k.mu.Lock()
	k.taken = false
	keep := !c.broken && !p.closed.Load()
	if keep {
		k.conn = c
	}
	k.mu.Unlock()
	if !keep {
		c.retire()
		k.kick()
	}
}

// keepReserve is the keeper goroutine: it dials the reserve when kicked (after the pool's
// first dial, after a kill broke it) and pings it every reserveCheckInterval, until ctx is
// cancelled by Close; then it closes the reserve.
func (p *Pool) keepReserve(ctx context.Context) {
	k := p.reserve
	t := time.NewTicker(reserveCheckInterval)
	defer t.Stop()
	wanted := false // set by the first kick: the backend is known and reachable
	for {
		select {
		case <-ctx.Done():
			if c := k.take(); c != nil {
				c.retire()
			}
			return
		case <-k.wake:
			wanted = true
		case <-t.C:
			p.checkReserve(ctx)
		}
		if wanted && !p.dialReserve(ctx) {
			select {
			case <-ctx.Done():
			case <-time.After(reserveRetry):
				k.kick()
			}
		}
	}
}

// dialReserve dials the reserve if it is missing; false if the dial failed.
func (p *Pool) dialReserve(ctx context.Context) bool {
	k := p.reserve
	k.mu.Lock()
	missing := k.conn == nil && !k.taken
	k.mu.Unlock()
	if !missing {
		return true
	}
	c, err := p.connect(ctx)
	if err != nil {
		p.log.Debug("pool: dialing the reserve connection for KILL QUERY failed", "err", err)
		return false
	}
	k.mu.Lock()
	if k.conn == nil && !k.taken && !p.closed.Load() {
		k.conn, c = c, nil
	}
	k.mu.Unlock()
	if c != nil {
		c.retire()
	}
	return true
}

// checkReserve pings the idle reserve; one that fails is closed (and re-dialed).
func (p *Pool) checkReserve(ctx context.Context) {
	c := p.reserve.take()
	if c == nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, p.opts.DialTimeout)
	defer cancel()
	if err := c.Ping(pctx); err != nil {
		c.broken = true
	}
	p.giveReserve(c)
}

// killOnReserve sends KILL QUERY connID over the reserve connection. ok is false when there
// was no usable reserve (the caller dials instead); a backend error is returned with ok true.
func (p *Pool) killOnReserve(ctx context.Context, connID uint32) (ok bool, err error) {
	c := p.reserve.take()
	if c == nil {
		return false, nil
	}
	if c.closedByServer() {
		c.broken = true
		p.giveReserve(c)
		return false, nil
	}
	_, err = c.Exec(ctx, "KILL QUERY "+strconv.FormatUint(uint64(connID), 10))
	failed := err != nil && !isBackendError(err)
	if failed {
		c.broken = true
	}
	p.giveReserve(c)
	if failed {
		return false, nil // the reserve failed: a fresh connection may not
	}
	if err != nil {
		return true, fmt.Errorf("pool: kill query %d: %w", connID, err)
	}
	return true, nil
}
