package topo

import (
	"context"
	"fmt"
	"time"

	"github.com/shardproxy/shardproxy/health"
)

// sharedHoldWait bounds the leader's wait for every proxy to apply a switchover's hold.
const sharedHoldWait = time.Second

// quiesceAll is quiesce for a switchover, after the other proxies too hold pl's shards: with
// a coordinator the hold is published and the leader waits (bounded by sharedHoldWait) until
// every running proxy applied it, so that none sends the old primary a statement once it is
// made read-only (the statements already running there finish first: read_only=1 waits for
// them).
func (t *Topology) quiesceAll(ctx context.Context, pl plan) (health.GTIDPos, bool, error) {
	if t.sh.coord != nil {
		held := map[string]SharedShard{}
		t.mu.RLock()
		for _, s := range pl.shards {
			if st, ok := t.shards[s]; ok {
				held[s] = SharedShard{Replicas: append([]string(nil), st.replicas...), Held: true, From: pl.old, Change: st.failover}
			}
		}
		t.mu.RUnlock()
		start := time.Now()
		if err := t.decide(ctx, held, nil, func() {}); err != nil {
			return nil, false, fmt.Errorf("holding the shard on every proxy: %w", err)
		}
		published := time.Since(start)
		wctx, cancel := context.WithTimeout(ctx, sharedHoldWait)
		err := t.sh.coord.WaitApplied(wctx, t.SharedVersion())
		cancel()
		t.log.Info("topo: switchover: the hold is published and confirmed", "old_primary", pl.old, "published", published, "confirmed", time.Since(start), "err", err)
		if err != nil {
			// A proxy that still sends the old primary statements would write after the
			// position the new primary catches up to: refuse (a dead proxy's key goes with
			// its lease, so trying again after the lease works).
			return nil, false, fmt.Errorf("not every proxy confirmed the hold within %v: %w", sharedHoldWait, err)
		}
	}
	return t.quiesce(ctx, pl.old)
}

// Settle waits until no statement of this proxy is in flight on a backend a held shard of s
// is switched over from (bounded like the leader's own quiesce); false if some still are:
// this proxy then does not confirm s, and the switchover's leader refuses to go on. The
// statements that wait for the hold are not in flight: they were never sent.
func (t *Topology) Settle(s Shared) bool {
	var froms []*member
	t.mu.RLock()
	for _, ss := range s.Shards {
		if m := t.backends[ss.From]; ss.Held && m != nil {
			froms = append(froms, m)
		}
	}
	t.mu.RUnlock()
	deadline := time.Now().Add(switchoverQuiesce)
	for _, m := range froms {
		for m.busy() > 0 {
			if time.Now().After(deadline) {
				t.log.Warn("topo: statements still run on a primary a switchover holds; not confirming the hold", "backend", m.cfg.Name, "in_use", m.busy())
				return false
			}
			time.Sleep(time.Millisecond) // statements in flight take milliseconds; no event to wait on
		}
	}
	return true
}

// restoreAll is restore, published to the other proxies when the topology is shared.
func (t *Topology) restoreAll(ctx context.Context, saved map[string]*shardState) {
	t.restore(saved)
	if t.sh.coord == nil {
		return
	}
	back := map[string]SharedShard{}
	for s, st := range saved {
		back[s] = SharedShard{Primary: st.primary, Replicas: append([]string(nil), st.replicas...), Change: st.failover}
	}
	if err := t.decide(ctx, back, nil, func() {}); err != nil {
		t.log.Error("topo: switchover: could not publish the restored roles; the other proxies hold the shard until the leader publishes", "err", err)
	}
}

// resolveHeld ends the holds a previous leader's switchover left in the shared topology (it
// died or lost etcd mid-way): a held shard gets as primary its one member that is up and
// writable (the switchover got as far as the promotion), or else the primary it was switched
// over from, made writable again (it did not). Anything else is ambiguous: it is logged and
// left to an operator. Run by the failover controller of the leader.
func (t *Topology) resolveHeld() {
	if t.sh.coord == nil {
		return
	}
	if _, ok := t.sh.coord.Leading(); !ok {
		return
	}
	// A hold applied from the shared topology (t.sh.held) is another proxy's; this proxy's own
	// switchover holds its shards by itself (hold) and is not in t.sh.held.
	t.mu.RLock()
	var left []string
	var entries []SharedShard
	for _, name := range sortedNames(t.sh.held) {
		if ss, ok := t.sh.last.shard(name); ok && ss.Held {
			left, entries = append(left, name), append(entries, ss)
		}
	}
	t.mu.RUnlock()
	for i, name := range left {
		t.resolveShard(name, entries[i])
	}
}

// resolveShard gives a shard a previous leader left held its primary back (resolveHeld).
func (t *Topology) resolveShard(name string, ss SharedShard) {
	ctx, cancel := t.stepContext(switchoverTimeout)
	defer cancel()
	t.mu.RLock()
	var writable []string
	members := append([]string{ss.From}, ss.Replicas...)
	for _, b := range members {
		if h := t.health[b]; b != "" && t.fenced[b] == "" && h.State == health.Up && h.Err == nil && !h.ReadOnly {
			writable = append(writable, b)
		}
	}
	from := t.health[ss.From]
	t.mu.RUnlock()
	primary := ""
	switch {
	case len(writable) == 1:
		primary = writable[0]
	case len(writable) == 0 && ss.From != "" && from.State == health.Up && from.Replica == nil:
		if err := t.admin(ctx, ss.From, "SET GLOBAL read_only = 0"); err != nil {
			t.log.Error("topo: could not make a held shard's old primary writable again", "shard", name, "backend", ss.From, "err", err)
			return
		}
		primary = ss.From
	default:
		t.log.Error("topo: a shard held by a switchover its leader left unfinished has no single writable member; an operator must act",
			"shard", name, "writable", fmt.Sprint(writable), "from", ss.From)
		return
	}
	var replicas []string
	for _, b := range members {
		if b != "" && b != primary {
			replicas = append(replicas, b)
		}
	}
	change := fmt.Sprintf("%s primary again after a switchover its leader left unfinished, at %s", primary, time.Now().UTC().Format(time.RFC3339))
	if err := t.decide(ctx, map[string]SharedShard{name: {Primary: primary, Replicas: replicas, Change: change}}, nil, func() {}); err != nil {
		t.log.Error("topo: could not publish a held shard's primary", "shard", name, "err", err)
		return
	}
	t.log.Warn("topo: ended a hold a previous leader's switchover left", "shard", name, "primary", primary)
}
