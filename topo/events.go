package topo

import (
	"sync"
	"time"
)

// maxHistory is how many failover events Topology.History keeps.
const maxHistory = 100

// history keeps the most recent failover events, oldest first. Safe for concurrent use.
type history struct {
	mu     sync.Mutex
	events []Event
}

// recorder returns an events function that timestamps e, keeps it, then calls next.
func (h *history) recorder(next func(Event)) func(Event) {
	return func(e Event) {
		if e.At.IsZero() {
			e.At = time.Now()
		}
		h.mu.Lock()
		h.events = append(h.events, e)
		if len(h.events) > maxHistory {
			h.events = append([]Event(nil), h.events[len(h.events)-maxHistory:]...)
		}
		h.mu.Unlock()
		next(e)
	}
}

// History returns the topology's most recent failover events (promotions, follows,
// refusals, failures, settings warnings), oldest first, at most 100. Safe for concurrent use.
func (t *Topology) History() []Event {
	t.hist.mu.Lock()
	defer t.hist.mu.Unlock()
	return append([]Event(nil), t.hist.events...)
}
