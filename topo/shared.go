package topo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/rules"
)

// Several proxies sharing one topology (README "Several proxies"). With a Coordinator (the
// configuration comes from etcd), the proxies elect one leader; only the leader runs
// automatic promotions, follow-mode moves and switchovers. It publishes each decision as the
// shared topology (Shared) through the coordinator, which writes it only while the leader
// still holds its leadership (its epoch), and every proxy, the leader included, switches by
// applying what was published (ApplyShared). A proxy that is not the leader sees a dead
// primary too and holds that shard's statements (as in promote mode) until the leader's
// decision arrives; a deposed leader's decision is refused, and it switches nothing.

// Coordinator is what topo needs from the election and the shared store (satisfied by
// coord.Etcd). Its methods are safe for concurrent use.
type Coordinator interface {
	// Leading reports whether this proxy leads now, and the epoch of its leadership (a number
	// that grows with every new leadership).
	Leading() (epoch int64, ok bool)
	// Publish stores next as the shared topology if this proxy still leads with epoch and the
	// shared topology is still the one next was based on (version next.Version-1). It returns
	// what was stored (Version, Epoch, Leader and At filled in), ErrNotLeader when the
	// leadership was lost, or ErrSharedConflict when another version was stored meanwhile.
	Publish(ctx context.Context, epoch int64, next Shared) (Shared, error)
	// WaitApplied waits until every running proxy applied the shared topology's version
	// (or a later one), or ctx ends.
	WaitApplied(ctx context.Context, version uint64) error
	// Confirm asks etcd whether this proxy still leads with epoch (ErrNotLeader if not): a
	// leader checks before it changes a server's role, so that one that was paused or cut off
	// and does not know yet that its lease ended leaves the servers alone.
	Confirm(ctx context.Context, epoch int64) error
}

// Errors of Coordinator.Publish.
var (
	// ErrNotLeader: the write was refused because the proxy no longer leads (a stale leader).
	ErrNotLeader = errors.New("topo: this proxy does not lead the shared topology")
	// ErrSharedConflict: the shared topology changed since the version the write was based on.
	ErrSharedConflict = errors.New("topo: the shared topology changed meanwhile")
)

// Shared is the topology the proxies share: each shard's primary and replicas, and the
// fenced backends. It is a value: its maps are never modified once published.
type Shared struct {
	// Version grows by one with every publication (topology version of the fleet).
	Version uint64 `json:"version"`
	// Epoch is the leadership of the leader that published it; Leader its identity.
	Epoch  int64                  `json:"epoch"`
	Leader string                 `json:"leader"`
	At     time.Time              `json:"at"`
	Shards map[string]SharedShard `json:"shards"`
	// Fenced names the backends that get no statement, with why (operators' offline
	// backends are local to each proxy and not shared).
	Fenced map[string]string `json:"fenced,omitempty"`
}

// SharedShard is one shard's roles in a Shared topology.
type SharedShard struct {
	Primary  string   `json:"primary"`
	Replicas []string `json:"replicas,omitempty"`
	// Change describes the last change of its roles (for the admin view).
	Change string `json:"change,omitempty"`
	// Held: a planned switchover holds the shard: it has no primary, and its statements wait
	// (as in promote mode) until a later version names the new one.
	Held bool `json:"held,omitempty"`
	// From is the primary a held shard is switched over from.
	From string `json:"from,omitempty"`
}

// sharing is the Topology's part in a shared topology; guarded by Topology.mu except coord,
// set once by New.
type sharing struct {
	coord Coordinator // nil: this proxy acts alone
	// publish serialises this proxy's publications (the controller's syncShared and an
	// operator's switchover): each computes the next version from the last one applied, so
	// two at once would conflict with each other rather than with another proxy.
	publish sync.Mutex
	last    *Shared // the last shared topology applied; nil: none yet
	// held keeps the failover settings of the shards a shared switchover holds here, for when
	// a later version releases them.
	held map[string]rules.Failover
}

// deciding reports whether this proxy may change its shards' roles on its own: always
// without a Coordinator, only while it leads with one.
func (t *Topology) deciding() bool {
	if t.sh.coord == nil {
		return true
	}
	_, ok := t.sh.coord.Leading()
	return ok
}

// SharedVersion returns the version of the shared topology applied last (0: none).
func (t *Topology) SharedVersion() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.sh.last == nil {
		return 0
	}
	return t.sh.last.Version
}

// LeadershipChanged tells the topology that this proxy won or lost the leadership: a new
// leader looks at every shard again at once (a promotion its predecessor left half done is
// carried on: each step is safe to repeat).
func (t *Topology) LeadershipChanged() { t.kickController() }

func (t *Topology) kickController() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// ApplyShared switches the topology to s (a publication the coordinator saw, in order):
// each shard named in s whose configured members include the backends s names takes s's
// primary and replicas, and each backend s fences is fenced here too (its connections in
// use are cut: a session pinned to a replaced primary sees a lost connection). Versions not
// newer than the last applied are ignored; it reports whether s was applied.
func (t *Topology) ApplyShared(s Shared) bool {
	t.mu.Lock()
	if t.closed || (t.sh.last != nil && s.Version <= t.sh.last.Version) {
		t.mu.Unlock()
		return false
	}
	t.sh.last = &s
	var switched []string
	for _, name := range sortedNames(s.Shards) {
		ss := s.Shards[name]
		st, ok := t.shards[name]
		if !ok {
			continue
		}
		if !membersOf(st, ss) {
			t.log.Warn("topo: the shared topology names backends this proxy's configuration does not give the shard; kept its roles",
				"shard", name, "primary", ss.Primary, "replicas", strings.Join(ss.Replicas, ","), "version", s.Version)
			continue
		}
		if st.primary == ss.Primary && slices.Equal(st.replicas, ss.Replicas) && (ss.Change == "" || ss.Change == st.failover) {
			continue
		}
		next := *st
		next.primary, next.replicas = ss.Primary, slices.Clone(ss.Replicas)
		t.holdLocked(name, &next, ss.Held)
		if ss.Change != "" {
			next.failover = ss.Change
		}
		t.shards[name] = &next
		switched = append(switched, name)
	}
	var fence []string
	for _, b := range sortedNames(s.Fenced) {
		if _, ok := t.backends[b]; ok && t.fenced[b] == "" {
			fence = append(fence, b)
			// Marked with the roles, so no view sees the new roles without the fence; fence
			// below cuts its connections.
			t.fenced[b] = s.Fenced[b]
		}
	}
	t.changeLocked()
	targets := t.targetsLocked()
	t.mu.Unlock()
	t.setTargets(targets)
	for _, b := range fence {
		t.fence(b, s.Fenced[b])
	}
	if len(switched) > 0 || len(fence) > 0 {
		t.log.Warn("topo: applied the shared topology", "version", s.Version, "leader", s.Leader, "epoch", s.Epoch,
			"shards", strings.Join(switched, ","), "fenced", strings.Join(fence, ","))
	} else {
		t.log.Debug("topo: shared topology unchanged here", "version", s.Version, "leader", s.Leader, "epoch", s.Epoch)
	}
	return true
}

// holdLocked makes st's statements wait for a new primary while a shared switchover holds
// its shard, and gives it back its failover settings once it is released. Called with t.mu
// held.
func (t *Topology) holdLocked(name string, st *shardState, held bool) {
	fo, was := t.sh.held[name]
	switch {
	case held && !was:
		if t.sh.held == nil {
			t.sh.held = map[string]rules.Failover{}
		}
		t.sh.held[name] = st.fo
		st.fo = buffering(st.fo)
	case !held && was:
		st.fo = fo
		delete(t.sh.held, name)
	}
}

// membersOf reports whether every backend ss names is a configured member of st.
func membersOf(st *shardState, ss SharedShard) bool {
	members := strings.Split(st.config, ",")
	if ss.Primary != "" && !slices.Contains(members, ss.Primary) {
		return false
	}
	for _, r := range ss.Replicas {
		if !slices.Contains(members, r) {
			return false
		}
	}
	return true
}

// viewLocked is this proxy's topology as a Shared (its Version the successor of the last
// applied). A shard without a primary here (a switchover holding it) keeps what was shared.
// Called with t.mu held.
func (t *Topology) viewLocked() Shared {
	v := Shared{Version: 1, Shards: map[string]SharedShard{}, Fenced: map[string]string{}}
	if t.sh.last != nil {
		v.Version = t.sh.last.Version + 1
	}
	for name, st := range t.shards {
		ss := SharedShard{Primary: st.primary, Replicas: slices.Clone(st.replicas), Change: st.failover}
		if prev, ok := t.sh.last.shard(name); ok && st.primary == "" {
			ss = prev
		}
		v.Shards[name] = ss
	}
	for b, why := range t.fenced {
		if !IsOffline(why) {
			v.Fenced[b] = why
		}
	}
	return v
}

func (s *Shared) shard(name string) (SharedShard, bool) {
	if s == nil {
		return SharedShard{}, false
	}
	ss, ok := s.Shards[name]
	return ss, ok
}

// sameRoles reports whether a and b give every shard the same primary and replicas and
// fence the same backends (descriptions aside).
func sameRoles(a, b Shared) bool {
	if len(a.Shards) != len(b.Shards) || len(a.Fenced) != len(b.Fenced) {
		return false
	}
	for name, why := range a.Fenced {
		if other, ok := b.Fenced[name]; !ok || other != why {
			return false
		}
	}
	for name, x := range a.Shards {
		y, ok := b.Shards[name]
		if !ok || x.Primary != y.Primary || !slices.Equal(x.Replicas, y.Replicas) {
			return false
		}
	}
	return true
}

// confirmLeader checks with etcd that this proxy still leads (always true alone).
func (t *Topology) confirmLeader(ctx context.Context) error {
	if t.sh.coord == nil {
		return nil
	}
	epoch, ok := t.sh.coord.Leading()
	if !ok {
		return ErrNotLeader
	}
	return t.sh.coord.Confirm(ctx, epoch)
}

// decide makes a change of roles. Alone, it runs local. With a coordinator, it publishes
// this proxy's view with shards' new roles and the fences added (refused unless this proxy
// still leads: the caller must then leave the shards as they are), applies what was
// published, and then runs local (which sets what only the deciding proxy keeps, such as a
// switchover's restored failover settings).
func (t *Topology) decide(ctx context.Context, shards map[string]SharedShard, fence map[string]string, local func()) error {
	if t.sh.coord == nil {
		local()
		return nil
	}
	t.sh.publish.Lock()
	defer t.sh.publish.Unlock()
	epoch, ok := t.sh.coord.Leading()
	if !ok {
		return ErrNotLeader
	}
	t.mu.RLock()
	next := t.viewLocked()
	t.mu.RUnlock()
	for name, ss := range shards {
		next.Shards[name] = ss
	}
	for b, why := range fence {
		next.Fenced[b] = why
	}
	pub, err := t.sh.coord.Publish(ctx, epoch, next)
	if err != nil {
		return fmt.Errorf("publishing the new topology (epoch %d): %w", epoch, err)
	}
	t.ApplyShared(pub)
	local()
	return nil
}

// syncShared publishes this proxy's view when it leads and its view differs from what is
// shared (roles and fences; descriptions alone are not published): the first leader
// publishes the initial topology and a reload's changes reach every proxy. Run by the
// failover controller.
func (t *Topology) syncShared() {
	if t.sh.coord == nil {
		return
	}
	t.sh.publish.Lock()
	defer t.sh.publish.Unlock()
	epoch, ok := t.sh.coord.Leading()
	if !ok {
		return
	}
	t.mu.RLock()
	view := t.viewLocked()
	same := t.sh.last != nil && sameRoles(view, *t.sh.last)
	t.mu.RUnlock()
	if same {
		return
	}
	ctx, cancel := t.stepContext(2 * time.Second)
	defer cancel()
	pub, err := t.sh.coord.Publish(ctx, epoch, view)
	if err != nil {
		t.log.Warn("topo: could not publish the topology", "version", view.Version, "epoch", epoch, "err", err)
		return
	}
	t.ApplyShared(pub)
}

// newRoles is the SharedShard of each of shards after primary replaced old: the shard's
// replicas here without primary and old.
func (t *Topology) newRoles(shards []string, old, primary, change string) map[string]SharedShard {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := map[string]SharedShard{}
	for _, s := range shards {
		if st, ok := t.shards[s]; ok {
			out[s] = SharedShard{Primary: primary, Change: change,
				Replicas: slices.DeleteFunc(slices.Clone(st.replicas), func(r string) bool { return r == primary || r == old })}
		}
	}
	return out
}

// switchedRoles is the SharedShard of each of pl's shards after a switchover to primary:
// pl.replicas (the old primary among them) replicate from it.
func (t *Topology) switchedRoles(pl plan, primary string) map[string]SharedShard {
	out := map[string]SharedShard{}
	change := fmt.Sprintf("switched over from %s to %s at %s", pl.old, primary, time.Now().UTC().Format(time.RFC3339))
	for _, s := range pl.shards {
		out[s] = SharedShard{Primary: primary, Replicas: slices.Clone(pl.replicas), Change: change}
	}
	return out
}
