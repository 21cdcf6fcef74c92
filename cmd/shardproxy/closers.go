package main

import (
	"log/slog"
	"time"
)

// closeWarnAfter is how long a shutdown step may take before it is reported: every step is
// bounded (contexts, deadlines), so one still running then is a bug worth naming.
const closeWarnAfter = 10 * time.Second

// closers are the shutdown steps of serve, run in reverse order of registration (as defers
// would be). A step that takes longer than warnAfter is logged by name while it runs, so a
// proxy that does not exit after SIGTERM says where it waits.
type closers struct {
	log       *slog.Logger
	warnAfter time.Duration
	steps     []closeStep
}

type closeStep struct {
	name string
	fn   func()
}

func newClosers(log *slog.Logger) *closers {
	return &closers{log: log, warnAfter: closeWarnAfter}
}

// add registers fn, run by run before the steps added earlier.
func (c *closers) add(name string, fn func()) {
	c.steps = append(c.steps, closeStep{name: name, fn: fn})
}

// run runs every step, last added first.
func (c *closers) run() {
	for i := len(c.steps) - 1; i >= 0; i-- {
		s := c.steps[i]
		start := time.Now()
		slow := time.AfterFunc(c.warnAfter, func() {
			c.log.Error("shutdown: a step is still running", "step", s.name, "after", c.warnAfter)
		})
		s.fn()
		if !slow.Stop() {
			c.log.Warn("shutdown: a slow step finished", "step", s.name, "took", time.Since(start).Round(time.Millisecond))
		}
	}
	c.steps = nil
}
