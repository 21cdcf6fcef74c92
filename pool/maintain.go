package pool

import (
	"context"
	"time"
)

// Bounds of the maintenance interval.
const (
	maxTick = time.Second
	minTick = 10 * time.Millisecond
)

// maintenanceInterval is a quarter of the shortest of IdleTimeout and MaxLifetime, within
// [minTick, maxTick], so idle connections are closed at most ~25% late.
func maintenanceInterval(o Options) time.Duration {
	d := o.IdleTimeout
	if o.MaxLifetime > 0 && o.MaxLifetime < d {
		d = o.MaxLifetime
	}
	return min(max(d/4, minTick), maxTick)
}

// maintain is the pool's maintenance goroutine: it closes idle connections past their idle
// timeout (down to MinIdle) or lifetime, and dials to keep MinIdle idle connections. It runs
// until ctx is cancelled by Close.
func (p *Pool) maintain(ctx context.Context) {
	t := time.NewTicker(p.tick)
	defer t.Stop()
	for {
		p.retireAll(p.evict(time.Now()))
		p.fill(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.kickCh:
		}
	}
}

// evict removes from the idle stack the connections past their lifetime, and those idle
// longer than IdleTimeout while more than MinIdle remain, and returns them to be closed.
func (p *Pool) evict(now time.Time) []*Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	var gone []*Conn
	kept := p.idle[:0]
	// The stack's bottom holds the longest idle connections: idle-timeout candidates are
	// taken from there, as many as exceed MinIdle.
	excess := len(p.idle) - p.opts.MinIdle
	for _, c := range p.idle {
		switch {
		case c.expiredAt(now):
			p.st.closedLifetime++
		case excess > 0 && now.Sub(c.lastUsed) > p.opts.IdleTimeout:
			p.st.closedIdle++
		default:
			kept = append(kept, c)
			continue
		}
		excess--
		gone = append(gone, c)
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	for range gone {
		p.dropLocked()
	}
	return gone
}

// fill dials, one at a time, until MinIdle connections are idle (or MaxOpen are open). A
// dial error is logged and retried at the next tick.
func (p *Pool) fill(ctx context.Context) {
	for {
		p.mu.Lock()
		if p.closedMu || len(p.idle)+p.dialing >= p.opts.MinIdle || p.open >= p.opts.MaxOpen {
			p.mu.Unlock()
			return
		}
		p.open++
		p.dialing++
		p.mu.Unlock()

		c, err := p.connect(ctx)
		p.mu.Lock()
		p.dialing--
		if err != nil {
			p.st.dialErrors++
			p.dropLocked()
			p.mu.Unlock()
			if ctx.Err() == nil {
				p.log.Warn("pool: dial for MinIdle failed", "err", err)
			}
			return
		}
		p.st.dials++
		c.lastUsed = time.Now()
		if p.closedMu || !p.handOffLocked(c) {
			if p.closedMu {
				p.st.closedPool++
			} else {
				p.st.closedExcess++
			}
			p.dropLocked()
			p.mu.Unlock()
			c.retire()
			return
		}
		p.mu.Unlock()
	}
}
