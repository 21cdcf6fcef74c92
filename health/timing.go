package health

import "time"

// Timing is the part of a Checker's Options a configuration reload may change while it
// runs: SetTiming applies it to every probe and heartbeat, running or started later.
type Timing struct {
	// Interval between probes of a backend that is up, and between heartbeats; zero: the
	// default (DefaultInterval).
	Interval time.Duration
	// Timeout bounds one probe, dial included; zero: DefaultTimeout.
	Timeout time.Duration
	// DownAfter consecutive failed probes make a backend down; zero: DefaultDownAfter.
	DownAfter int
}

func (t Timing) withDefaults() Timing {
	if t.Interval <= 0 {
		t.Interval = DefaultInterval
	}
	if t.Timeout <= 0 {
		t.Timeout = DefaultTimeout
	}
	if t.DownAfter <= 0 {
		t.DownAfter = DefaultDownAfter
	}
	return t
}

// SetTiming makes t (zero fields: the defaults) the timing of every probe and heartbeat.
// A probe under way finishes under the timing it started with; a probe or heartbeat
// waiting for its next turn starts it at once under t, so a shorter interval applies
// without waiting out a long one. Probe connections and each backend's state (and its count
// of failed probes: a lower DownAfter takes effect at the next failure) are kept. It reports
// whether the timing changed.
func (c *Checker) SetTiming(t Timing) bool {
	t = t.withDefaults()
	c.tmu.Lock()
	defer c.tmu.Unlock()
	if t == c.timing {
		return false
	}
	c.opts.Logger.Info("health: probe timing changed", "interval", t.Interval, "timeout", t.Timeout, "down_after", t.DownAfter,
		"was_interval", c.timing.Interval, "was_timeout", c.timing.Timeout, "was_down_after", c.timing.DownAfter)
	c.timing = t
	close(c.retimed)
	c.retimed = make(chan struct{})
	return true
}

// Timing returns the timing in force.
func (c *Checker) Timing() Timing {
	t, _ := c.currentTiming()
	return t
}

// currentTiming returns the timing in force and a channel closed when it next changes.
func (c *Checker) currentTiming() (Timing, <-chan struct{}) {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	return c.timing, c.retimed
}
