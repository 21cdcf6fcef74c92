package pool

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A KILL QUERY needs a connection of its own to the backend. Dialing one when a statement's
// deadline passes costs a TCP connect and a full login, seconds on a loaded machine, and
// fails outright when the backend is at max_connections; meanwhile the statement's client
// waits. With Options.KillReserve the pool keeps one connection in reserve for KILL QUERY:
// dialed after the pool's first successful dial, checked with COM_PING every
// reserveCheckInterval, re-dialed when it breaks, and closed by Close. A KILL QUERY that
// finds the reserve in use by another kill waits for it up to reserveWait; one that finds it
// missing, dead or still busy falls back to a short-lived dial.

// reserveCheckInterval is how often the reserve connection is pinged (keeping it clear of
// the server's wait_timeout and noticing a dead one before a kill needs it).
const reserveCheckInterval = 30 * time.Second

// reserveRetry is the wait before dialing the reserve again after a failed dial.
const reserveRetry = time.Second

// reserveWait is how long a KillQuery waits for the reserve while another kill uses it (a
// scatter statement's shards on one backend are killed together) before it dials instead:
// a KILL QUERY is one round trip, a dial several plus a login.
const reserveWait = 250 * time.Millisecond

// killReserve is the pool's reserve connection for KILL QUERY; its keeper goroutine
// (keepReserve) is owned by the Pool.
type killReserve struct {
	slot chan *Conn    // cap 1: the idle reserve
	held atomic.Int32  // KillQuery (or the keeper's ping) calls holding the reserve
	wake chan struct{} // cap 1: asks the keeper to dial

	mu     sync.Mutex // orders give against the keeper's exit
	closed bool
}

func newKillReserve() *killReserve {
	return &killReserve{slot: make(chan *Conn, 1), wake: make(chan struct{}, 1)}
}

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

// ready reports whether the reserve connection is dialed and idle.
func (k *killReserve) ready() bool { return len(k.slot) > 0 }

// missing reports whether there is no reserve, idle or in use.
func (k *killReserve) missing() bool { return len(k.slot) == 0 && k.held.Load() == 0 }

// take returns the reserve connection, waiting up to wait (and ctx) while another caller
// holds it; nil when it is missing or stays busy. The caller must give it back.
func (k *killReserve) take(ctx context.Context, wait time.Duration) *Conn {
	if k == nil {
		return nil
	}
	// The receive and the count happen under k.mu, and a waiter counts itself before it
	// waits: the keeper (dialReserve, under k.mu) never sees a reserve that is merely
	// changing hands as missing.
	k.mu.Lock()
	select {
	case c := <-k.slot:
		k.held.Add(1)
		k.mu.Unlock()
		return c
	default:
	}
	busy := k.held.Load() > 0
	if busy && wait > 0 {
		k.held.Add(1)
	}
	k.mu.Unlock()
	if !busy || wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case c := <-k.slot:
		return c
	case <-t.C:
	case <-ctx.Done():
	}
	k.held.Add(-1)
	if k.missing() {
		k.kick() // the holder broke it meanwhile and the keeper, seeing us, did not dial
	}
	return nil
}

// giveReserve puts back a reserve connection taken by take; a broken one (or any once the
// keeper stopped) is closed, and the keeper dials a new one.
func (p *Pool) giveReserve(c *Conn) {
	k := p.reserve
	k.mu.Lock()
	keep := !c.st.Broken() && !k.closed
	if keep {
		// Never block (with k.mu held, the keeper's exit and so Close would wait forever):
		// between take's receive and its held.Add the reserve looks missing, a dial the
		// keeper finishes then fills the slot, and two reserve connections circulate. The
		// one that finds the slot full is closed.
		select {
		case k.slot <- c:
		default:
			keep = false
		}
	}
	k.held.Add(-1)
	k.mu.Unlock()
	if !keep {
		c.retire()
		k.kick()
	}
}

// stopReserve closes the idle reserve for good (the keeper's exit); one in use is closed
// when given back.
func (k *killReserve) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	select {
	case c := <-k.slot:
		c.retire()
	default:
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
			k.stop()
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
	if !k.missing() {
		return true
	}
	c, err := p.connect(ctx)
	if err != nil {
		p.log.Debug("pool: dialing the reserve connection for KILL QUERY failed", "err", err)
		return false
	}
	k.mu.Lock()
	kept := !k.closed && k.missing()
	if kept {
		k.slot <- c
	}
	k.mu.Unlock()
	if !kept {
		c.retire()
	}
	return true
}

// checkReserve pings the idle reserve; one that fails is closed (and re-dialed).
func (p *Pool) checkReserve(ctx context.Context) {
	c := p.reserve.take(ctx, 0)
	if c == nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, p.opts.DialTimeout)
	defer cancel()
	if err := c.Ping(pctx); err != nil {
		c.st.MarkBroken()
	}
	p.giveReserve(c)
}

// killOnReserve sends KILL QUERY connID over the reserve connection. ok is false when there
// was no usable reserve (the caller dials instead); a backend error is returned with ok true.
func (p *Pool) killOnReserve(ctx context.Context, connID uint32) (ok bool, err error) {
	c := p.reserve.take(ctx, reserveWait)
	if c == nil {
		return false, nil
	}
	if c.closedByServer() {
		c.st.MarkBroken()
		p.giveReserve(c)
		return false, nil
	}
	_, err = c.Exec(ctx, "KILL QUERY "+strconv.FormatUint(uint64(connID), 10))
	failed := err != nil && !isBackendError(err)
	if failed {
		c.st.MarkBroken()
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
