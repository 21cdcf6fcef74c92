package topo

import (
	"fmt"
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/rules"
)

// Follow mode (rules.FailoverFollow): another tool promotes a replica; the proxy takes as the
// shard's primary the one backend of the shard that reports read_only=0, fences the primary
// it leaves (nothing is routed to it again until an operator re-adds it), and, while no
// writable primary is known, buffers the shard's statements as promote mode does. It never
// writes to a backend to change its role (but a fenced backend that comes back writable is
// made read-only, as in promote mode).

// managed reports a failover mode in which the proxy probes the shard's backends, buffers
// its statements while it has no writable primary, and changes its primary (promote, follow).
func managed(mode string) bool {
	return mode == rules.FailoverPromote || mode == rules.FailoverFollow
}

// followMove is a switch of follow-mode shards from one primary to a writable replica.
type followMove struct {
	old, next string
	shards    []string
	since     time.Time // when the old primary was last seen as the shard's writable primary
}

// followMoves finds the follow-mode shards whose primary is not writable (down, suspect or
// read_only=1) while exactly one of their unfenced replicas is up and reports read_only=0.
// Two writable replicas are ambiguous: the proxy waits (and says so) rather than guess.
func (t *Topology) followMoves() []followMove {
	t.mu.RLock()
	defer t.mu.RUnlock()
	byOld := map[string]*followMove{}
	var order []string
	for _, name := range sortedNames(t.shards) {
		st := t.shards[name]
		if st.fo.Mode != rules.FailoverFollow || st.primary == "" {
			continue
		}
		p := t.health[st.primary]
		if t.fenced[st.primary] == "" && p.State == health.Up && p.Err == nil && !p.ReadOnly {
			continue // the primary is writable: nothing to follow
		}
		var writable []string
		for _, r := range st.replicas {
			h := t.health[r]
			if t.fenced[r] == "" && h.State == health.Up && h.Err == nil && !h.ReadOnly {
				writable = append(writable, r)
			}
		}
		if len(writable) != 1 {
			if len(writable) > 1 {
				t.log.Warn("topo: several replicas report read_only=0; not following any", "shard", name, "replicas", strings.Join(writable, ","))
			}
			continue
		}
		key := st.primary + "→" + writable[0]
		mv, ok := byOld[key]
		if !ok {
			mv = &followMove{old: st.primary, next: writable[0]}
			if p.State != health.Up {
				mv.since = p.Since
			}
			byOld[key] = mv
			order = append(order, key)
		}
		mv.shards = append(mv.shards, name)
	}
	out := make([]followMove, 0, len(order))
	for _, k := range order {
		out = append(out, *byOld[k])
	}
	return out
}

// follow fences mv.old (statements for the shards wait meanwhile) and makes mv.next their
// primary, which wakes the waiting statements.
func (t *Topology) follow(mv followMove) {
	start := time.Now()
	why := fmt.Sprintf("left by follow mode: %s reports read_only=0", mv.next)
	t.fence(mv.old, why)
	ctx, cancel := t.stepContext(failoverTimeout)
	defer cancel()
	change := fmt.Sprintf("followed %s in place of %s at %s", mv.next, mv.old, time.Now().UTC().Format(time.RFC3339))
	if err := t.decide(ctx, t.newRoles(mv.shards, mv.old, mv.next, change), map[string]string{mv.old: why},
		func() { t.switchPrimary(plan{old: mv.old, shards: mv.shards}, mv.next) }); err != nil {
		t.log.Error("topo: could not follow a new primary", "old_primary", mv.old, "new_primary", mv.next, "err", err)
		return
	}
	t.mu.Lock()
	for _, s := range mv.shards {
		if st, ok := t.shards[s]; ok {
			st.failover = change
		}
	}
	t.mu.Unlock()
	took := time.Since(mv.since)
	if mv.since.IsZero() {
		took = time.Since(start)
	}
	t.log.Warn("topo: followed a new primary", "old_primary", mv.old, "new_primary", mv.next, "shards", strings.Join(mv.shards, ","), "since_old_lost", took)
	t.events(Event{Kind: EventPromoted, Backend: mv.old, NewPrimary: mv.next, Shards: mv.shards, Reason: "followed", Took: took, Mode: rules.FailoverFollow})
}
