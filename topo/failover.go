package topo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/pool"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// EventKind says what a failover Event reports.
type EventKind string

// Event kinds.
const (
	EventPromoted EventKind = "promoted" // a replica became the primary of the shards
	EventRefused  EventKind = "refused"  // automatic promotion refused (Reason says why)
	EventFailed   EventKind = "failed"   // a promotion step failed (Reason); it is retried
	EventSettings EventKind = "settings" // a primary runs without the required settings
)

// Event is one failover event, for metrics and logs.
type Event struct {
	Kind       EventKind
	Backend    string   // the old primary (or the backend whose settings are wrong)
	NewPrimary string   // EventPromoted: the promoted replica
	Shards     []string // the shards concerned
	Reason     string
	Took       time.Duration // EventPromoted: from the primary found down to writable again
	Mode       string        // EventPromoted: rules.FailoverPromote, or rules.FailoverFollow when followed
	At         time.Time     // when it happened (set when it is recorded)
}

// Timing of the failover controller.
const (
	// failoverTimeout bounds one promotion (every statement it sends included).
	failoverTimeout = 10 * time.Second
	// retryAfter spaces attempts at a refused or failed promotion.
	retryAfter = time.Second
	// applyTimeout bounds the wait for the chosen replica to apply what it received.
	applyTimeout = 5 * time.Second
)

// errRefused marks reasons not to promote automatically.
var errRefused = errors.New("topo: automatic promotion refused")

// controller is the Topology's failover goroutine: woken by health changes, it promotes a
// replica for each group of promote-mode shards whose primary is down, and fences a fenced
// backend that came back (read_only=1).
func (t *Topology) controller() {
	last := map[string]time.Time{} // old primary → last attempt
	for {
		select {
		case <-t.stop:
			return
		case <-t.kick:
		}
		groups, refence := t.candidates()
		deciding := t.deciding() // with several proxies, only the leader promotes (shared.go)
		for _, p := range sortedNames(groups) {
			if !deciding || time.Since(last[p]) < retryAfter {
				continue
			}
			last[p] = time.Now()
			t.failover(p, groups[p])
		}
		for _, b := range refence {
			t.refence(b)
		}
		for _, mv := range t.followMoves() {
			if deciding {
				t.follow(mv)
			}
		}
		t.resolveHeld()
		t.syncShared()
	}
}

// candidates returns the shards to fail over, grouped by their (down) primary, and the
// fenced backends that are up again and writable.
func (t *Topology) candidates() (map[string][]string, []string) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	groups := map[string][]string{}
	for _, name := range sortedNames(t.shards) {
		st := t.shards[name]
		if st.fo.Mode != rules.FailoverPromote || st.primary == "" {
			continue
		}
		if _, fenced := t.fenced[st.primary]; fenced {
			continue
		}
		if t.health[st.primary].State == health.Down {
			groups[st.primary] = append(groups[st.primary], name)
		}
	}
	var refence []string
	for _, b := range sortedNames(t.fenced) {
		if IsOffline(t.fenced[b]) {
			continue // taken offline by an operator, not a deposed primary: leave it be
		}
		if h := t.health[b]; h.State == health.Up && h.Err == nil && !h.ReadOnly {
			refence = append(refence, b)
		}
	}
	return groups, refence
}

// plan is a promotion decided under the lock: who is promoted, who is repointed.
type plan struct {
	old      string
	shards   []string
	replicas []string // every replica of the shards (all reachable)
	choices  []string // replicas of every shard: those that may be promoted
	fo       rules.Failover
	downAt   time.Time
	unseen   bool // the old primary was never probed: the replicas vouched for it (coldstart.go)
}

// failover promotes a replica in place of old for shards, or refuses and says why.
func (t *Topology) failover(old string, shards []string) {
	ctx, cancel := t.stepContext(failoverTimeout)
	defer cancel()
	pl, err := t.plan(old, shards)
	if err == nil {
		err = t.promote(ctx, pl)
	}
	if err == nil {
		return
	}
	if errors.Is(err, ErrNotLeader) {
		t.log.Warn("topo: left a failover to the new leader: this proxy no longer leads", "backend", old, "err", err)
		return
	}
	kind := EventFailed
	if errors.Is(err, errRefused) {
		kind = EventRefused
	}
	reason := strings.TrimPrefix(err.Error(), errRefused.Error()+": ")
	t.mu.Lock()
	changed := false
	for _, s := range shards {
		if st, ok := t.shards[s]; ok {
			msg := fmt.Sprintf("%s: %s (old primary %s)", kind, reason, old)
			changed = changed || st.failover != msg
			st.failover = msg
		}
	}
	t.mu.Unlock()
	if changed {
		t.log.Error("topo: shards lost their primary and were NOT failed over automatically", "backend", old, "shards", strings.Join(shards, ","), "outcome", kind, "reason", reason)
		t.events(Event{Kind: kind, Backend: old, Shards: shards, Reason: reason})
	}
}

// plan checks that old is gone for sure and that a promotion loses no acknowledged write.
func (t *Topology) plan(old string, shards []string) (plan, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	pl := plan{old: old, shards: shards}
	h := t.health[old]
	if h.State != health.Down {
		return pl, fmt.Errorf("%w: primary %s is %s again", errRefused, old, h.State)
	}
	pl.downAt = h.Since
	for i, s := range shards {
		st, ok := t.shards[s]
		if !ok {
			return pl, fmt.Errorf("%w: shard %s was removed by a reload", errRefused, s)
		}
		pl.fo = st.fo
		if i == 0 {
			pl.choices = slices.Clone(st.replicas)
		} else {
			pl.choices = slices.DeleteFunc(pl.choices, func(r string) bool { return !slices.Contains(st.replicas, r) })
		}
		for _, r := range st.replicas {
			if !slices.Contains(pl.replicas, r) {
				pl.replicas = append(pl.replicas, r)
			}
		}
	}
	pl.choices = slices.DeleteFunc(pl.choices, func(r string) bool { return t.fenced[r] != "" })
	pl.replicas = slices.DeleteFunc(pl.replicas, func(r string) bool { return t.fenced[r] != "" })
	if len(pl.choices) == 0 {
		return pl, fmt.Errorf("%w: no replica serves every shard of primary %s", errRefused, old)
	}
	if h.Seen.IsZero() {
		// Started after the primary died: the replicas' view stands in (coldstart.go).
		if p := t.unseenPrimaryProblem(old, shards); p != "" {
			return pl, fmt.Errorf("%w: %s", errRefused, p)
		}
		pl.unseen = true
	} else if w := semiSyncProblem(h.Settings); w != "" {
		return pl, fmt.Errorf("%w: %s on primary %s when last seen, so a replica may lack acknowledged writes", errRefused, w, old)
	}
	for _, r := range pl.replicas {
		rh := t.health[r]
		if rh.State != health.Up {
			return pl, fmt.Errorf("%w: replica %s is %s (%s): it may hold the only copy of acknowledged writes", errRefused, r, rh.State, rh.Reason)
		}
		// A second opinion: a replica that still receives from the primary after the proxy
		// lost it means the primary is alive and only the proxy is cut off from it.
		if a := t.activity[r]; a.changed.After(pl.downAt) {
			return pl, fmt.Errorf("%w: replica %s still receives from %s (the proxy, not the primary, may be cut off)", errRefused, r, old)
		}
	}
	return pl, nil
}

// semiSyncProblem says why a primary with these settings may have acknowledged a write no
// replica received ("" if none).
func semiSyncProblem(s health.Settings) string {
	switch {
	case !s.SemiSyncMaster:
		return "semi-synchronous replication was disabled"
	case !s.SemiSyncActive:
		return "semi-synchronous replication had fallen back to asynchronous"
	case !strings.EqualFold(s.SemiSyncWaitPoint, "AFTER_SYNC"):
		return "rpl_semi_sync_master_wait_point was " + s.SemiSyncWaitPoint
	case s.SemiSyncClients == 0 && !s.SemiSyncWaitNoSlave:
		// With wait_no_slave ON a commit waits for a replica that is not there; with it OFF
		// MariaDB may commit without one while the status still says ON.
		return "no semi-sync replica was connected (Rpl_semi_sync_master_clients = 0, rpl_semi_sync_master_wait_no_slave OFF)"
	}
	return ""
}

// promote carries out pl: stop every replica's IO thread, pick the one that received the
// most, fence the old primary, wait until the chosen one applied everything, make it
// writable, repoint the others, and switch the shards to it.
func (t *Topology) promote(ctx context.Context, pl plan) error {
	start := time.Now()
	if err := t.confirmLeader(ctx); err != nil {
		return err // a stale leader touches no server (shared.go)
	}
	received, err := t.stopReceiving(ctx, pl.replicas)
	t.log.Debug("topo: failover: IO threads stopped", "after", time.Since(start))
	if err != nil {
		t.restartReceiving(pl.replicas)
		return err
	}
	best := ""
	for _, r := range pl.choices {
		if best == "" || !received[best].Contains(received[r]) {
			best = r
		}
	}
	for r, pos := range received {
		if !received[best].Contains(pos) {
			t.restartReceiving(pl.replicas)
			return fmt.Errorf("%w: replica %s received %s, which %s (%s) lacks: the replicas diverged", errRefused, r, pos, best, received[best])
		}
	}
	if err := t.confirmLeader(ctx); err != nil {
		t.restartReceiving(pl.replicas)
		return err
	}
	// From here on the old primary gets nothing: statements wait for the new one.
	t.fence(pl.old, "replaced by "+best)
	if err := t.applyAll(ctx, best, received[best]); err != nil {
		return err
	}
	t.log.Debug("topo: failover: applied", "backend", best, "after", time.Since(start))
	// Semi-sync on before writes: a replica runs without it (on a replica MariaDB would make
	// the applier wait for acknowledgements), the new primary must not acknowledge a write no
	// replica received.
	if err := t.admin(ctx, best, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL rpl_semi_sync_master_enabled = ON", "SET GLOBAL read_only = 0"); err != nil {
		return fmt.Errorf("promoting %s: %w", best, err)
	}
	for _, r := range pl.replicas {
		if r != best {
			if err := t.repoint(ctx, r, best, pl.fo); err != nil {
				// The new primary is writable already; a replica left behind is logged.
				t.log.Error("topo: could not repoint a replica to the new primary", "backend", r, "primary", best, "err", err)
			}
		}
	}
	change := fmt.Sprintf("promoted %s in place of %s at %s", best, pl.old, time.Now().UTC().Format(time.RFC3339))
	if err := t.decide(ctx, t.newRoles(pl.shards, pl.old, best, change), map[string]string{pl.old: "replaced by " + best},
		func() { t.switchPrimary(pl, best) }); err != nil {
		return err // a deposed leader: the new one carries on (each step is safe to repeat)
	}
	took := time.Since(pl.downAt)
	t.log.Warn("topo: promoted a replica", "old_primary", pl.old, "new_primary", best, "shards", strings.Join(pl.shards, ","),
		"received", received[best].String(), "promotion", time.Since(start), "since_down", took, "old_primary_never_seen", pl.unseen)
	t.events(Event{Kind: EventPromoted, Backend: pl.old, NewPrimary: best, Shards: pl.shards, Took: took, Mode: rules.FailoverPromote})
	return nil
}

// stopReceiving stops the IO thread of every replica, in parallel, and returns what each
// received (Gtid_IO_Pos). The IO thread is killed first: STOP SLAVE alone waits up to
// seconds for an IO thread blocked in a read from a hung primary, KILL cuts its socket.
func (t *Topology) stopReceiving(ctx context.Context, replicas []string) (map[string]health.GTIDPos, error) {
	type result struct {
		r   string
		pos health.GTIDPos
		err error
	}
	ch := make(chan result, len(replicas))
	for _, r := range replicas {
		go func() {
			pos, err := t.stopOne(ctx, r)
			ch <- result{r, pos, err}
		}()
	}
	out := map[string]health.GTIDPos{}
	var errs []error
	for range replicas {
		res := <-ch
		if res.err != nil {
			errs = append(errs, fmt.Errorf("%w: replica %s: %w", errRefused, res.r, res.err))
			continue
		}
		out[res.r] = res.pos
	}
	return out, errors.Join(errs...)
}

// stopOne stops replica r's IO thread and reads what it received.
func (t *Topology) stopOne(ctx context.Context, r string) (health.GTIDPos, error) {
	var pos health.GTIDPos
	err := t.adminConn(ctx, r, func(c *pool.Conn) error {
		// A promotion its previous leader left half done is carried on (resume.go).
		if p, done, err := alreadyPromoted(ctx, c); done || err != nil {
			pos = p
			return err
		}
		rows, err := c.Query(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO'")
		if err != nil {
			return err
		}
		for i := range rows.Values {
			if id := rows.Get(i, "ID"); id != "" {
				// The thread may end by itself in between: 1094 (unknown thread) is fine.
				t0 := time.Now()
				if _, err := c.Exec(ctx, "KILL "+id); err != nil && !isUnknownThread(err) {
					return fmt.Errorf("killing the IO thread: %w", err)
				}
				t.log.Debug("topo: failover: killed IO thread", "backend", r, "took", time.Since(t0))
			}
		}
		st, err := t.waitIOStopped(ctx, r, c)
		if err != nil {
			return err
		}
		pos, err = health.ParseGTIDPos(st.Get(0, "Gtid_IO_Pos"))
		return err
	})
	return pos, err
}

// ioStopWait bounds the wait for a killed IO thread to end before STOP SLAVE IO_THREAD.
const ioStopWait = time.Second

// waitIOStopped waits (polling SHOW SLAVE STATUS) until the IO thread of c's server no
// longer reads from its primary, then makes sure it stays stopped; it returns the last status read. STOP
// SLAVE IO_THREAD on a thread still running would wait in steps of 2 s for it.
func (t *Topology) waitIOStopped(ctx context.Context, r string, c *pool.Conn) (*pool.Rows, error) {
	start := time.Now()
	deadline := start.Add(ioStopWait)
	for {
		st, err := c.Query(ctx, "SHOW SLAVE STATUS")
		if err != nil {
			return nil, err
		}
		// "Connecting" (a killed thread retrying) stops at once too; only "Yes" (a read
		// blocked on the old primary) would make STOP SLAVE wait.
		if st.Get(0, "Slave_IO_Running") != "Yes" || time.Now().After(deadline) {
			t.log.Debug("topo: failover: IO thread state", "backend", r, "state", st.Get(0, "Slave_IO_Running"), "after", time.Since(start))
			if _, err := c.Exec(ctx, "STOP SLAVE IO_THREAD"); err != nil {
				return nil, err
			}
			t.log.Debug("topo: failover: IO thread stopped", "backend", r, "after", time.Since(start))
			return c.Query(ctx, "SHOW SLAVE STATUS")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// isUnknownThread reports a KILL of a thread that is gone (ER_NO_SUCH_THREAD).
func isUnknownThread(err error) bool {
	e, ok := sqlerr.As(err)
	return ok && e.Code == 1094
}

// restartReceiving starts the IO threads stopped by a promotion that did not happen.
func (t *Topology) restartReceiving(replicas []string) {
	ctx, cancel := t.stepContext(2 * time.Second)
	defer cancel()
	for _, r := range replicas {
		if err := t.admin(ctx, r, "START SLAVE IO_THREAD"); err != nil {
			t.log.Error("topo: could not restart a replica's IO thread after a refused promotion", "backend", r, "err", err)
		}
	}
}

// applyAll waits until replica r applied every transaction it received (pos).
func (t *Topology) applyAll(ctx context.Context, r string, pos health.GTIDPos) error {
	q := fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', %.3f)", pos.String(), applyTimeout.Seconds())
	rows, err := t.query(ctx, r, q)
	if err != nil {
		return fmt.Errorf("waiting for %s to apply %s: %w", r, pos, err)
	}
	if len(rows.Values) != 1 || len(rows.Values[0]) != 1 || rows.Values[0][0] == nil || *rows.Values[0][0] != "0" {
		return fmt.Errorf("replica %s did not apply %s within %v", r, pos, applyTimeout)
	}
	return nil
}

// repoint makes replica r replicate from primary p, from what r applied.
func (t *Topology) repoint(ctx context.Context, r, p string, fo rules.Failover) error {
	change, err := t.changeMaster(r, p, fo)
	if err != nil {
		return err
	}
	return t.admin(ctx, r, "STOP SLAVE", change, "START SLAVE")
}

// changeMaster is the CHANGE MASTER statement that makes backend r replicate from backend p
// by GTID (slave_pos), as the shard's replication user (or r's own account).
func (t *Topology) changeMaster(r, p string, fo rules.Failover) (string, error) {
	t.mu.RLock()
	pm, ok := t.backends[p]
	rm := t.backends[r]
	t.mu.RUnlock()
	if !ok || rm == nil {
		return "", fmt.Errorf("backend %s or %s is gone", r, p)
	}
	host, port, err := net.SplitHostPort(pm.cfg.ReplicationAddr)
	if err != nil {
		return "", err
	}
	user, pw := fo.ReplUser, fo.ReplPassword
	if user == "" {
		user, pw = rm.cfg.User, rm.cfg.Password
	}
	return fmt.Sprintf("CHANGE MASTER TO MASTER_HOST = %s, MASTER_PORT = %s, MASTER_USER = %s, MASTER_PASSWORD = %s, MASTER_USE_GTID = slave_pos",
		wire.QuoteString(host), port, wire.QuoteString(user), wire.QuoteString(pw)), nil
}

// switchPrimary makes best the primary of pl's shards and wakes the statements waiting.
func (t *Topology) switchPrimary(pl plan, best string) {
	t.mu.Lock()
	for _, s := range pl.shards {
		st, ok := t.shards[s]
		if !ok {
			continue
		}
		next := *st
		next.primary = best
		next.replicas = slices.DeleteFunc(slices.Clone(st.replicas), func(r string) bool { return r == best || r == pl.old })
		next.failover = fmt.Sprintf("promoted %s in place of %s at %s", best, pl.old, time.Now().UTC().Format(time.RFC3339))
		if pl.unseen {
			next.failover += " (" + pl.old + " was never reached: its replicas vouched for it)"
		}
		t.shards[s] = &next
	}
	t.changeLocked()
	targets := t.targetsLocked()
	t.mu.Unlock()
	t.setTargets(targets)
}

// fence stops every statement to backend b: no new connection, the ones in use are cut (their
// statements fail as a lost connection), the idle ones closed. b stays fenced until an operator
// re-adds it (a reload that removes or changes it) or calls Unfence.
func (t *Topology) fence(b, why string) {
	t.mu.Lock()
	t.fenced[b] = why
	old := t.backends[b]
	if old == nil { // removed by a reload meanwhile: nothing to cut
		t.changeLocked()
		t.mu.Unlock()
		return
	}
	fresh, err := newMember(&old.cfg, t.log)
	if err == nil {
		t.backends[b] = fresh // an empty pool, for the day b is unfenced
	}
	t.changeLocked()
	targets := t.targetsLocked()
	t.mu.Unlock()
	t.setTargets(targets)
	n := old.interrupt()
	t.log.Warn("topo: fenced backend", "backend", b, "reason", why, "connections_cut", n)
	if err == nil {
		idle := old.drain()
		t.drains.Go(func() { t.drainMember(old, idle) })
	}
}

// refence makes a fenced backend that came back read-only, so that nothing else writes to it.
// Its commits left waiting for a semi-sync acknowledgement (no replica follows it any more)
// would block read_only=1: semi-sync is switched off first, which ends those waits (their
// clients were cut when it was fenced: they saw a lost connection, never a success).
func (t *Topology) refence(b string) {
	ctx, cancel := t.stepContext(2 * time.Second)
	defer cancel()
	if err := t.admin(ctx, b, "SET GLOBAL rpl_semi_sync_master_enabled = OFF", "SET GLOBAL read_only = 1"); err != nil {
		t.log.Warn("topo: could not make a fenced backend read-only", "backend", b, "err", err)
		return
	}
	t.log.Warn("topo: a fenced backend came back; made it read-only", "backend", b)
}

// Unfence lets statements reach backend b again (an operator re-adds it after rebuilding it).
func (t *Topology) Unfence(b string) {
	t.mu.Lock()
	delete(t.fenced, b)
	t.changeLocked()
	targets := t.targetsLocked()
	t.mu.Unlock()
	t.setTargets(targets)
}
