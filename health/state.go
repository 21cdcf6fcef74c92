package health

import "time"

// State is what the probes say about a backend.
type State uint8

// States.
const (
	// Unknown: not probed yet.
	Unknown State = iota
	// Up: the last probe succeeded.
	Up
	// Suspect: the last probes failed, fewer than Options.DownAfter in a row.
	Suspect
	// Down: Options.DownAfter probes in a row failed.
	Down
)

// String returns "unknown", "up", "suspect" or "down".
func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Suspect:
		return "suspect"
	case Down:
		return "down"
	}
	return "unknown"
}

// machine is the state of one backend, fed with probe outcomes.
type machine struct {
	state  State
	fails  int       // consecutive failed probes
	reason string    // why the state last changed
	since  time.Time // when it last changed
}

// observe records a probe outcome (err nil: success) at now and reports whether the state
// changed. downAfter consecutive failures make a backend down; fewer make it suspect; one
// success makes it up.
func (m *machine) observe(now time.Time, err error, downAfter int) bool {
	next := Up
	reason := "probe succeeded"
	if err != nil {
		m.fails++
		reason = err.Error()
		next = Suspect
		if m.fails >= downAfter {
			next = Down
		}
	} else {
		m.fails = 0
	}
	if next == m.state {
		if err != nil && next != Up {
			m.reason = reason // the latest failure explains the state best
		}
		return false
	}
	m.state, m.reason, m.since = next, reason, now
	return true
}
