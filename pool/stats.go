package pool

import "time"

// counters are the pool's cumulative counters; guarded by Pool.mu.
type counters struct {
	waitCount       uint64
	waitDuration    time.Duration
	acquireTimeouts uint64
	waitCanceled    uint64
	dials           uint64
	dialErrors      uint64
	resets          uint64
	resetErrors     uint64
	closedBroken    uint64
	closedByServer  uint64
	closedLifetime  uint64
	closedIdle      uint64
	closedExcess    uint64
	closedPool      uint64
}

// Stats is a snapshot of a pool's state and cumulative counters (for metrics). Gauges are
// consistent with each other: Open = Idle + InUse + Dialing.
type Stats struct {
	MaxOpen int // the configured limit

	Open    int // connections open: idle, in use and being dialled
	Idle    int // connections in the idle stack
	InUse   int // connections handed out and not yet released
	Dialing int // dials in progress
	Waiting int // Acquire calls waiting now

	WaitCount       uint64        // Acquire calls that had to wait
	WaitDuration    time.Duration // total time spent waiting
	AcquireTimeouts uint64        // waits that ended with ErrAcquireTimeout
	WaitCanceled    uint64        // waits that ended because their context was done

	Dials       uint64 // successful dials (KillQuery's side connections not included)
	DialErrors  uint64 // failed dials, including handshake errors
	Resets      uint64 // COM_RESET_CONNECTION sent by Release
	ResetErrors uint64 // resets that failed (the connection was closed)

	// Connections closed, by reason.
	ClosedBroken   uint64 // marked broken, failed a ping or a reset (includes ClosedByServer)
	ClosedByServer uint64 // found closed by the server (KILL, restart) as Acquire took it
	ClosedLifetime uint64 // MaxLifetime reached
	ClosedIdle     uint64 // IdleTimeout reached
	ClosedExcess   uint64 // released while MaxIdle were idle
	ClosedPool     uint64 // pool closed
}

// Stats returns a snapshot of the pool's state. It is safe to call at any time, also after
// Close.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{
		MaxOpen:         p.opts.MaxOpen,
		Open:            p.open,
		Idle:            len(p.idle),
		InUse:           p.open - len(p.idle) - p.dialing,
		Dialing:         p.dialing,
		Waiting:         p.waiters.len(),
		WaitCount:       p.st.waitCount,
		WaitDuration:    p.st.waitDuration,
		AcquireTimeouts: p.st.acquireTimeouts,
		WaitCanceled:    p.st.waitCanceled,
		Dials:           p.st.dials,
		DialErrors:      p.st.dialErrors,
		Resets:          p.st.resets,
		ResetErrors:     p.st.resetErrors,
		ClosedBroken:    p.st.closedBroken,
		ClosedByServer:  p.st.closedByServer,
		ClosedLifetime:  p.st.closedLifetime,
		ClosedIdle:      p.st.closedIdle,
		ClosedExcess:    p.st.closedExcess,
		ClosedPool:      p.st.closedPool,
	}
}
