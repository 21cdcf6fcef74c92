package topo

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// offlineReason is the fence reason of a backend an operator took offline.
const offlineReason = "offline: drained by an operator"

// ErrUnknownBackend is returned for a backend name the topology does not have.
var ErrUnknownBackend = errors.New("topo: unknown backend")

// SetOffline drains backend b for maintenance: from now on no statement gets a connection
// to it (reads go to another replica; a shard whose primary it is has none: its statements
// fail, or wait in promote mode), the statements in flight on it finish, and then its pool
// closes. It waits for them until ctx is done and returns how many connections were still
// in use then (they close when released, or at the drain timeout). Unlike fencing after a
// failover, nothing in flight is cut. SetOnline undoes it.
func (t *Topology) SetOffline(ctx context.Context, b string) (int, error) {
	t.mu.Lock()
	old, ok := t.backends[b]
	if !ok {
		t.mu.Unlock()
		return 0, fmt.Errorf("%w %q", ErrUnknownBackend, b)
	}
	if why := t.fenced[b]; why != "" {
		t.mu.Unlock()
		if why == offlineReason {
			return 0, nil
		}
		return 0, fmt.Errorf("topo: backend %s is fenced (%s)", b, why)
	}
	fresh, err := newMember(&old.cfg, t.log)
	if err != nil {
		t.mu.Unlock()
		return 0, err
	}
	t.fenced[b] = offlineReason
	t.backends[b] = fresh // an empty pool, for SetOnline
	t.changeLocked()
	targets := t.targetsLocked()
	t.mu.Unlock()
	t.setTargets(targets)
	idle := old.drain()
	t.log.Info("topo: backend taken offline; draining", "backend", b)
	select {
	case <-idle:
	case <-ctx.Done():
	}
	old.mu.Lock()
	n := old.inUse
	old.mu.Unlock()
	t.drains.Go(func() { t.drainMember(old, idle) })
	return n, nil
}

// SetOnline lets statements reach a backend taken offline by SetOffline again. A backend
// fenced by a failover is refused: it may hold writes the new primary lacks; re-add it by
// a reload after rebuilding it.
func (t *Topology) SetOnline(b string) error {
	t.mu.RLock()
	_, ok := t.backends[b]
	why := t.fenced[b]
	t.mu.RUnlock()
	switch {
	case !ok:
		return fmt.Errorf("%w %q", ErrUnknownBackend, b)
	case why == "":
		return nil
	case why != offlineReason:
		return fmt.Errorf("topo: backend %s is fenced (%s): rebuild it and reload the configuration", b, why)
	}
	t.Unfence(b)
	t.log.Info("topo: backend back online", "backend", b)
	return nil
}

// IsOffline reports whether a fence reason (BackendInfo.Fenced) is an operator's SetOffline.
func IsOffline(fenced string) bool { return strings.HasPrefix(fenced, "offline:") }
