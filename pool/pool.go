package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by Pool.
var (
	// ErrClosed is returned by Acquire after Close, including to callers that were waiting.
	ErrClosed = errors.New("pool: closed")
	// ErrAcquireTimeout is returned (wrapped, with the address, the wait and MaxOpen) when
	// Options.AcquireTimeout elapses before a connection is free.
	ErrAcquireTimeout = errors.New("pool: timed out waiting for a connection")
)

// Pool is a pool of connections to one backend. It is safe for concurrent use.
//
// Acquire hands out a connection (idle ones most recently used first, so hot connections
// stay hot), dials a new one while fewer than MaxOpen are open, or waits in FIFO order for
// one to be released. Release puts a connection back, resetting its session first when
// needed. One maintenance goroutine, owned by the Pool and stopped by Close, closes idle and
// expired connections and keeps MinIdle warm.
type Pool struct {
	opts   Options
	log    *slog.Logger
	tick   time.Duration // maintenance interval
	kickCh chan struct{} // cap 1: wakes maintenance early to refill MinIdle
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool // mirrors closedMu for lock-free early checks

	mu       sync.Mutex
	closedMu bool
	idle     []*Conn // LIFO stack: the most recently released on top (last)
	waiters  waitQueue
	open     int // idle + in use + dialing
	dialing  int
	st       counters

	reserve *killReserve // nil without Options.KillReserve (killer.go)
}

// New returns a pool for opts.Addr after applying defaults and validating opts. It does not
// dial: the first connections are made by Acquire, or by maintenance when MinIdle > 0.
// Close must be called to stop the pool's maintenance goroutine.
func New(opts Options) (*Pool, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		opts:   opts,
		log:    opts.Logger.With("backend", opts.Addr),
		tick:   maintenanceInterval(opts),
		kickCh: make(chan struct{}, 1),
		cancel: cancel,
	}
	p.wg.Go(func() { p.maintain(ctx) })
	if opts.KillReserve {
		p.reserve = newKillReserve()
		p.wg.Go(func() { p.keepReserve(ctx) })
	}
	return p, nil
}

// Addr returns the backend's address.
func (p *Pool) Addr() string { return p.opts.Addr }

// Acquire returns a connection for the caller's exclusive use until Release. It never
// returns a connection known to be broken: one that sat idle longer than PingAfterIdle is
// pinged first and replaced if the ping fails.
//
// When MaxOpen connections are open it waits, bounded by ctx and AcquireTimeout: it returns
// an error wrapping ErrAcquireTimeout or ctx.Err(), whichever comes first. Dialing is bounded
// by ctx and DialTimeout; a backend ERR during the handshake is returned as a wrapped
// *sqlerr.Error. After Close it returns ErrClosed.
func (p *Pool) Acquire(ctx context.Context) (*Conn, error) {
	return p.AcquirePreferring(ctx, nil)
}

// AcquirePreferring is Acquire that hands out prefer, a connection the caller released
// earlier, when it is still idle: a client keeps meeting the same backend session (and
// server thread), whose caches are warm. Otherwise it behaves as Acquire.
func (p *Pool) AcquirePreferring(ctx context.Context, prefer *Conn) (*Conn, error) {
	return p.AcquireMatching(ctx, prefer, "")
}

// AcquireMatching is AcquirePreferring that, when prefer is not idle, hands out an idle
// connection whose current database is db if one is near the top of the idle stack (when
// several shards' databases share a server, this saves switching databases).
func (p *Pool) AcquireMatching(ctx context.Context, prefer *Conn, db string) (*Conn, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("pool: acquire on %s: %w", p.opts.Addr, err)
		}
		g, err := p.take(ctx, prefer, db)
		prefer = nil
		if err != nil {
			return nil, err
		}
		if g.dial {
			return p.dial(ctx)
		}
		if p.healthy(ctx, g.c) {
			return g.c, nil
		}
	}
}

// matchScan bounds how far down the idle stack AcquireMatching looks for its database.
const matchScan = 16

// take pops an idle connection (prefer if idle, else the most recent one using db, else the
// most recent), reserves a slot to dial, or waits for either.
func (p *Pool) take(ctx context.Context, prefer *Conn, db string) (grant, error) {
	now := time.Now()
	var expired []*Conn
	p.mu.Lock()
	if p.closedMu {
		p.mu.Unlock()
		return grant{}, ErrClosed
	}
	if prefer != nil && prefer.pool == p && !prefer.inUse && !prefer.expiredAt(now) {
		if i := slices.Index(p.idle, prefer); i >= 0 {
			p.idle = slices.Delete(p.idle, i, i+1)
			prefer.inUse = true
			p.mu.Unlock()
			return grant{c: prefer}, nil
		}
	}
	if db != "" {
		for i := len(p.idle) - 1; i >= 0 && i >= len(p.idle)-matchScan; i-- {
			c := p.idle[i]
			if c.st.DB() == db && !c.expiredAt(now) {
				p.idle = slices.Delete(p.idle, i, i+1)
				c.inUse = true
				p.mu.Unlock()
				return grant{c: c}, nil
			}
		}
	}
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
		if c.expiredAt(now) {
			p.st.closedLifetime++
			p.dropLocked()
			expired = append(expired, c)
			continue
		}
		c.inUse = true
		p.mu.Unlock()
		p.retireAll(expired)
		return grant{c: c}, nil
	}
	if p.open < p.opts.MaxOpen && p.waiters.len() == 0 {
		p.open++
		p.dialing++
		p.mu.Unlock()
		p.retireAll(expired)
		return grant{dial: true}, nil
	}
	w := p.waiters.push()
	p.st.waitCount++
	p.mu.Unlock()
	p.retireAll(expired)
	return p.wait(ctx, w)
}

// healthy reports whether c may be handed out. Every connection taken from the idle stack or
// handed over by a Release, however briefly it sat there, is first checked for having been
// closed by the server (one non-blocking peek: a KILL from the server side may land
// microseconds after the release); one idle longer than PingAfterIdle is also pinged. A
// connection that fails is closed.
func (p *Pool) healthy(ctx context.Context, c *Conn) bool {
	if c.closedByServer() {
		p.log.Debug("pool: discarding connection the server closed", "conn_id", c.id)
		p.mu.Lock()
		p.st.closedByServer++
		p.mu.Unlock()
		c.st.MarkBroken()
		p.Release(c)
		return false
	}
	if time.Since(c.lastUsed) <= p.opts.PingAfterIdle {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.DialTimeout)
	err := c.Ping(ctx)
	cancel()
	if err == nil {
		return true
	}
	p.log.Debug("pool: discarding connection that failed its ping", "conn_id", c.id, "err", err)
	c.st.MarkBroken()
	p.Release(c)
	return false
}

// dial makes a new connection in a slot already counted in open and dialing.
func (p *Pool) dial(ctx context.Context) (*Conn, error) {
	c, err := p.connect(ctx)
	p.mu.Lock()
	p.dialing--
	if err != nil {
		p.st.dialErrors++
		p.dropLocked()
		p.mu.Unlock()
		return nil, err
	}
	p.st.dials++
	p.reserve.kick() // the backend answers: keep a connection for KILL QUERY too
	if p.closedMu {
		p.st.closedPool++
		p.dropLocked()
		p.mu.Unlock()
		c.retire()
		return nil, ErrClosed
	}
	c.inUse = true
	p.mu.Unlock()
	return c, nil
}

// Release gives c back to the pool; c must not be used afterwards. A broken connection, one
// past its lifetime, or any after Close is closed. A dirty one, or one whose last status
// says a transaction is open, is first reset with COM_RESET_CONNECTION (synchronously,
// bounded by DialTimeout; closed if the reset fails). Otherwise it goes to the longest
// waiting Acquire or onto the idle stack. Releasing a connection that is not in use panics.
func (p *Pool) Release(c *Conn) {
	if c.pool != p {
		panic("pool: Release of a connection from another pool")
	}
	now := time.Now()
	if !c.st.Broken() && (c.st.Dirty() || c.st.InTransaction()) && !c.expiredAt(now) && !p.closed.Load() {
		p.reset(c)
	}
	p.mu.Lock()
	if !c.inUse {
		p.mu.Unlock()
		panic("pool: Release of a connection that is not in use")
	}
	c.inUse = false
	c.wc.TrimBuffer() // an idle connection does not keep its largest packet's memory
	switch {
	case c.st.Broken():
		p.st.closedBroken++
	case p.closedMu:
		p.st.closedPool++
	case c.expiredAt(now):
		p.st.closedLifetime++
	default:
		c.lastUsed = now
		if p.handOffLocked(c) {
			p.mu.Unlock()
			return
		}
		p.st.closedExcess++
	}
	p.dropLocked()
	p.mu.Unlock()
	c.retire()
	p.kick()
}

// reset sends COM_RESET_CONNECTION to c, bounded by DialTimeout.
func (p *Pool) reset(c *Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.DialTimeout)
	defer cancel()
	err := c.Reset(ctx)
	p.mu.Lock()
	p.st.resets++
	if err != nil {
		p.st.resetErrors++
	}
	p.mu.Unlock()
	if err != nil {
		p.log.Warn("pool: reset failed; closing connection", "conn_id", c.id, "err", err)
	}
}

// handOffLocked gives an idle-able connection to the oldest waiter, or pushes it onto the
// idle stack if there is room. It reports false when c must be closed instead.
func (p *Pool) handOffLocked(c *Conn) bool {
	if w := p.waiters.pop(); w != nil {
		c.inUse = true
		w.ch <- grant{c: c}
		return true
	}
	if len(p.idle) >= p.opts.MaxIdle {
		return false
	}
	p.idle = append(p.idle, c)
	return true
}

// dropLocked accounts for a connection (or dial slot) that is gone: the freed slot goes to
// the oldest waiter, who will dial.
func (p *Pool) dropLocked() {
	p.open--
	if p.closedMu {
		return
	}
	if w := p.waiters.pop(); w != nil {
		p.open++
		p.dialing++
		w.ch <- grant{dial: true}
	}
}

// kick wakes maintenance to refill MinIdle after connections were closed. It never blocks.
func (p *Pool) kick() {
	if p.opts.MinIdle == 0 {
		return
	}
	select {
	case p.kickCh <- struct{}{}:
	default:
	}
}

// Close closes the pool: it stops maintenance and waits for it, closes idle connections and
// wakes waiters with ErrClosed. Connections in use are closed when released. Close is
// idempotent and always returns nil.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closedMu {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closedMu = true
	p.closed.Store(true)
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	p.st.closedPool += uint64(len(idle))
	for w := p.waiters.pop(); w != nil; w = p.waiters.pop() {
		w.ch <- grant{err: ErrClosed}
	}
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	p.retireAll(idle)
	return nil
}

func (c *Conn) expiredAt(now time.Time) bool {
	return !c.expires.IsZero() && !now.Before(c.expires)
}

// retireAll closes cs and wakes maintenance if there were any.
func (p *Pool) retireAll(cs []*Conn) {
	for _, c := range cs {
		c.retire()
	}
	if len(cs) > 0 {
		p.kick()
	}
}
