package health

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultInterval        = 200 * time.Millisecond
	DefaultSuspectInterval = 100 * time.Millisecond
	DefaultTimeout         = 300 * time.Millisecond
	DefaultDownAfter       = 3
)

// Target is one backend to probe.
type Target struct {
	Name, Addr, User, Password string
	// Heartbeat makes the checker write the heartbeat row on this backend every interval
	// (set it on each shard's current primary, never on a fenced backend).
	Heartbeat bool
}

// Options configures a Checker; zero values select the defaults. Interval, Timeout and
// DownAfter are the initial Timing: SetTiming changes them on a running Checker.
type Options struct {
	// Interval between probes of a backend that is up; default 200ms. It is also the
	// heartbeat interval.
	Interval time.Duration
	// SuspectInterval between probes of a backend that is not up; default 100ms (never more
	// than Interval).
	SuspectInterval time.Duration
	// Timeout bounds each probe, dial included; default 300ms.
	Timeout time.Duration
	// DownAfter consecutive failed probes make a backend down; default 3.
	DownAfter int
	// Publish receives every probe's Status, from the backend's probe goroutine (one call at
	// a time per backend). It must not block for long.
	Publish func(Status)
	Logger  *slog.Logger
}

func (o Options) withDefaults() Options {
	t := Timing{Interval: o.Interval, Timeout: o.Timeout, DownAfter: o.DownAfter}.withDefaults()
	o.Interval, o.Timeout, o.DownAfter = t.Interval, t.Timeout, t.DownAfter
	if o.SuspectInterval <= 0 {
		o.SuspectInterval = DefaultSuspectInterval
	}
	if o.Publish == nil {
		o.Publish = func(Status) {}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Checker probes a set of backends. It is safe for concurrent use; Close stops it.
type Checker struct {
	opts Options // its Interval, Timeout and DownAfter only seed timing

	mu      sync.Mutex
	closed  bool
	probers map[string]*prober
	wg      sync.WaitGroup

	tmu     sync.Mutex
	timing  Timing
	retimed chan struct{} // closed and replaced by SetTiming: sleeping probes wake
}

// prober is the goroutines of one target.
type prober struct {
	target Target
	cancel context.CancelFunc
	hbStop context.CancelFunc // nil while no heartbeat goroutine runs

	mu   sync.Mutex
	last Status
}

// New returns a checker with no targets.
func New(opts Options) *Checker {
	opts = opts.withDefaults()
	return &Checker{opts: opts, probers: map[string]*prober{}, retimed: make(chan struct{}),
		timing: Timing{Interval: opts.Interval, Timeout: opts.Timeout, DownAfter: opts.DownAfter}}
}

// SetTargets makes ts the backends probed: new ones start, missing ones stop, ones whose
// address or credentials changed restart, and heartbeats follow Target.Heartbeat.
func (c *Checker) SetTargets(ts []Target) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	want := map[string]Target{}
	for _, t := range ts {
		want[t.Name] = t
	}
	for name, p := range c.probers {
		t, ok := want[name]
		if !ok || t.Addr != p.target.Addr || t.User != p.target.User || t.Password != p.target.Password {
			p.stop()
			delete(c.probers, name)
		}
	}
	for _, t := range ts {
		p, ok := c.probers[t.Name]
		if !ok {
			p = c.start(t)
			c.probers[t.Name] = p
		}
		p.setHeartbeat(c, t.Heartbeat)
		p.target.Heartbeat = t.Heartbeat
	}
}

// Status returns the latest status of backend name.
func (c *Checker) Status(name string) (Status, bool) {
	c.mu.Lock()
	p, ok := c.probers[name]
	c.mu.Unlock()
	if !ok {
		return Status{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last, true
}

// Statuses returns the latest status of every backend, by name.
func (c *Checker) Statuses() []Status {
	c.mu.Lock()
	ps := make([]*prober, 0, len(c.probers))
	for _, p := range c.probers {
		ps = append(ps, p)
	}
	c.mu.Unlock()
	out := make([]Status, 0, len(ps))
	for _, p := range ps {
		p.mu.Lock()
		out = append(out, p.last)
		p.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Status) int {
		if a.Backend < b.Backend {
			return -1
		}
		if a.Backend > b.Backend {
			return 1
		}
		return 0
	})
	return out
}

// Close stops every probe and heartbeat and waits for them. It is idempotent.
func (c *Checker) Close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		for name, p := range c.probers {
			p.stop()
			delete(c.probers, name)
		}
	}
	c.mu.Unlock()
	c.wg.Wait()
}

func (c *Checker) start(t Target) *prober {
	ctx, cancel := context.WithCancel(context.Background())
	p := &prober{target: t, cancel: cancel, last: Status{Backend: t.Name}}
	c.wg.Go(func() { c.run(ctx, p, t) })
	return p
}

func (p *prober) stop() {
	p.cancel()
	if p.hbStop != nil {
		p.hbStop()
		p.hbStop = nil
	}
}

// setHeartbeat starts or stops the heartbeat goroutine; called with Checker.mu held.
func (p *prober) setHeartbeat(c *Checker, on bool) {
	switch {
	case on && p.hbStop == nil:
		ctx, cancel := context.WithCancel(context.Background())
		p.hbStop = cancel
		t := p.target
		c.wg.Go(func() { c.heartbeat(ctx, t) })
	case !on && p.hbStop != nil:
		p.hbStop()
		p.hbStop = nil
	}
}

// run probes target (a copy: SetTargets may change p.target meanwhile) until ctx ends.
func (c *Checker) run(ctx context.Context, p *prober, target Target) {
	var m machine
	var cn *conn
	defer func() {
		if cn != nil {
			cn.close()
		}
	}()
	log := c.opts.Logger.With("backend", target.Name)
	var seen Status
	for {
		start := time.Now()
		tm, retimed := c.currentTiming()
		pctx, cancel := context.WithTimeout(ctx, tm.Timeout)
		st := Status{Backend: target.Name}
		var err error
		if cn == nil {
			cn, err = dial(pctx, target)
		}
		if err == nil {
			err = cn.probe(pctx, &st)
			if err != nil && !isServerError(err) {
				cn.close()
				cn = nil
			}
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		if m.observe(now, err, tm.DownAfter) {
			log.Info("health: backend state changed", "state", m.state.String(), "reason", m.reason)
		}
		if err == nil {
			st.Seen = now
			seen = st
		} else {
			seen.Err = nil
			st = seen // keep what the last successful probe saw
		}
		st.Backend, st.State, st.Reason, st.Since, st.Checked, st.Err = target.Name, m.state, m.reason, m.since, now, err
		p.mu.Lock()
		p.last = st
		p.mu.Unlock()
		c.opts.Publish(st)
		wait := tm.Interval
		if m.state != Up {
			wait = min(c.opts.SuspectInterval, tm.Interval)
		}
		wait -= time.Since(start)
		if wait <= 0 {
			continue
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-retimed: // probe at once under the new timing
			timer.Stop()
		case <-timer.C:
		}
	}
}

// heartbeatTimeout bounds one heartbeat write: it may wait for a semi-sync acknowledgement.
const heartbeatTimeout = 2 * time.Second

// heartbeat writes the heartbeat row on t every interval until ctx ends. Failures are
// logged at debug level: the probes judge the backend's health, not the heartbeat.
func (c *Checker) heartbeat(ctx context.Context, t Target) {
	var cn *conn
	created := false
	defer func() {
		if cn != nil {
			cn.close()
		}
	}()
	tm, retimed := c.currentTiming()
	tick := time.NewTicker(tm.Interval)
	defer tick.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
		var err error
		if cn == nil {
			cn, err = dial(hctx, t)
		}
		if err == nil {
			if err = cn.heartbeat(hctx, &created); err != nil && !isServerError(err) {
				cn.close()
				cn = nil
			}
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			c.opts.Logger.Debug("health: heartbeat failed", "backend", t.Name, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-retimed:
			tm, retimed = c.currentTiming()
			tick.Reset(tm.Interval)
		case <-tick.C:
		}
	}
}
