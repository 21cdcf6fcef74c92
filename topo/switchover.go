package topo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/rules"
)

// Timing of a planned switchover.
const (
	// switchoverQuiesce bounds the wait for the statements in flight on the old primary.
	switchoverQuiesce = 2 * time.Second
	// switchoverCatchUp bounds the wait for the new primary to apply the old one's writes.
	switchoverCatchUp = 2 * time.Second
	// switchoverTimeout bounds a whole switchover, once begun (every statement it sends).
	switchoverTimeout = 10 * time.Second
)

// EventSwitchover reports a planned switchover done (Backend the old primary, NewPrimary,
// Shards, Took the time statements were held).
const EventSwitchover EventKind = "switchover"

// ErrSwitchover marks a switchover refused before anything changed (bad shard or target,
// connections busy on the old primary); the shard keeps its primary.
var ErrSwitchover = errors.New("topo: switchover refused")

// ErrUnknownShard is returned for a shard name the topology does not have.
var ErrUnknownShard = errors.New("topo: unknown shard")

// SwitchoverResult reports a planned switchover.
type SwitchoverResult struct {
	Shard, Old, New string
	// Paused is how long new statements for the shard were held.
	Paused time.Duration
	// Position is the GTID position the new primary applied before it was made writable.
	Position string
}

// Switchover makes replica to (or, when to is "", the shard's first replica that is up and
// applying) the primary of shard, losing no write and failing no statement: new statements
// for the shard wait (as during a failover, bounded by their deadline and the buffer
// timeout), the statements in flight on the old primary finish, the old primary is made
// read-only, the new one applies everything the old one wrote, is promoted, the old primary
// and the other replicas replicate from it, and the waiting statements run on it. If a step
// before the promotion fails, the old primary is made writable again and keeps the shard.
// Every shard whose primary is the old one moves with it.
//
// ctx only bounds the start: once begun, a switchover runs to its end (bounded by
// switchoverTimeout, cut short by Close) even if the caller goes away.
func (t *Topology) Switchover(ctx context.Context, shard, to string) (SwitchoverResult, error) {
	res := SwitchoverResult{Shard: shard}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if !t.deciding() {
		return res, fmt.Errorf("%w: %w: run it on the leader (its identity is in the admin API's status)", ErrSwitchover, ErrNotLeader)
	}
	pl, err := t.planSwitchover(shard, to)
	if err != nil {
		return res, err
	}
	ctx, cancel := t.stepContext(switchoverTimeout)
	defer cancel()
	res.Old, res.New = pl.old, pl.choices[0]
	start := time.Now()
	saved := t.hold(pl)
	pos, semiSync, err := t.quiesceAll(ctx, pl)
	if err == nil {
		res.Position = pos.String()
		err = t.applyWithin(ctx, res.New, pos)
	}
	if err != nil {
		rerr := t.admin(ctx, pl.old, "SET GLOBAL read_only = 0")
		t.restoreAll(ctx, saved)
		res.Paused = time.Since(start)
		return res, fmt.Errorf("%w: %w (old primary %s kept; making it writable again: %v)", ErrSwitchover, err, pl.old, rerr)
	}
	promote := []string{"STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0"}
	if semiSync {
		promote = []string{"STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL rpl_semi_sync_master_enabled = ON", "SET GLOBAL read_only = 0"}
	}
	if err := t.admin(ctx, res.New, promote...); err != nil {
		// The old primary is read-only and the new one in an unknown state: leave the shard
		// without a primary (statements wait, then fail) rather than guess; an operator acts.
		t.log.Error("topo: switchover: promoting the new primary failed; the shard has no writable primary", "shard", shard, "backend", res.New, "err", err)
		res.Paused = time.Since(start)
		return res, fmt.Errorf("topo: switchover: promoting %s: %w", res.New, err)
	}
	// The old primary and the other replicas follow the new primary before statements are
	// released: with semi-sync its first commit waits for a replica's acknowledgement.
	if err := t.demote(ctx, pl.old, res.New, pl.fo, semiSync); err != nil {
		t.log.Error("topo: switchover: the old primary could not be made a replica of the new one", "backend", pl.old, "primary", res.New, "err", err)
	}
	for _, r := range pl.replicas {
		if r != res.New {
			if err := t.repoint(ctx, r, res.New, pl.fo); err != nil {
				t.log.Error("topo: switchover: could not repoint a replica to the new primary", "backend", r, "primary", res.New, "err", err)
			}
		}
	}
	pl.replicas = append(slices.DeleteFunc(pl.replicas, func(r string) bool { return r == res.New }), pl.old)
	if err := t.decide(ctx, t.switchedRoles(pl, res.New), nil, func() { t.release(pl, res.New) }); err != nil {
		// Deposed meanwhile: the shards stay held here; the new leader or an operator acts.
		t.log.Error("topo: switchover: the new roles could not be published; the shard waits for the leader", "shard", shard, "backend", res.New, "err", err)
		res.Paused = time.Since(start)
		return res, fmt.Errorf("topo: switchover: %w", err)
	}
	res.Paused = time.Since(start)
	t.events(Event{Kind: EventSwitchover, Backend: pl.old, NewPrimary: res.New, Shards: pl.shards, Took: res.Paused})
	t.log.Warn("topo: switchover done", "shard", shard, "old_primary", pl.old, "new_primary", res.New, "paused", res.Paused, "position", res.Position)
	return res, nil
}

// planSwitchover checks the request and names the shards that move and their replicas.
func (t *Topology) planSwitchover(shard, to string) (plan, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	st, ok := t.shards[shard]
	switch {
	case !ok:
		return plan{}, fmt.Errorf("%w: %w %q", ErrSwitchover, ErrUnknownShard, shard)
	case st.primary == "":
		return plan{}, fmt.Errorf("%w: shard %s has no writable primary now", ErrSwitchover, shard)
	case t.fenced[st.primary] != "":
		return plan{}, fmt.Errorf("%w: the primary %s of shard %s is fenced", ErrSwitchover, st.primary, shard)
	}
	pl := plan{old: st.primary, fo: st.fo}
	for _, name := range sortedNames(t.shards) {
		if s := t.shards[name]; s.primary == pl.old {
			pl.shards = append(pl.shards, name)
			for _, r := range s.replicas {
				if !slices.Contains(pl.replicas, r) && t.fenced[r] == "" {
					pl.replicas = append(pl.replicas, r)
				}
			}
		}
	}
	for _, r := range st.replicas {
		if (to == "" || r == to) && switchable(t.health[r]) && t.fenced[r] == "" && t.servesAll(r, pl.shards) {
			pl.choices = []string{r}
			break
		}
	}
	if len(pl.choices) == 0 {
		if to != "" {
			return plan{}, fmt.Errorf("%w: %s is not a replica of every shard of %s that is up, replicating and not fenced", ErrSwitchover, to, pl.old)
		}
		return plan{}, fmt.Errorf("%w: shard %s has no replica that is up and replicating", ErrSwitchover, shard)
	}
	return pl, nil
}

// servesAll reports whether r is a replica of every shard in shards. Called with t.mu held.
func (t *Topology) servesAll(r string, shards []string) bool {
	for _, s := range shards {
		if !slices.Contains(t.shards[s].replicas, r) {
			return false
		}
	}
	return true
}

// switchable reports whether a replica with status h may become the primary: its last probe
// succeeded and found both replication threads running.
func switchable(h health.Status) bool {
	return h.State == health.Up && h.Err == nil && h.Replica != nil && h.Replica.SQLRunning && h.Replica.IORunning == "Yes"
}

// hold takes the primary away from pl's shards, so that new statements for them wait (as in
// promote mode, whatever the shard's mode), and returns their states for restore.
func (t *Topology) hold(pl plan) map[string]*shardState {
	t.mu.Lock()
	defer t.mu.Unlock()
	saved := map[string]*shardState{}
	for _, s := range pl.shards {
		st := t.shards[s]
		saved[s] = st
		next := *st
		next.primary = ""
		next.fo = buffering(st.fo)
		next.failover = "switchover from " + pl.old + " under way"
		t.shards[s] = &next
	}
	t.changeLocked()
	return saved
}

// buffering is fo with statements waiting for a new primary (as in promote mode, whatever
// the shard's mode).
func buffering(fo rules.Failover) rules.Failover {
	fo.Mode = rules.FailoverPromote
	if fo.BufferTimeout <= 0 {
		fo.BufferTimeout = rules.DefaultBufferTimeout
	}
	if fo.BufferMax <= 0 {
		fo.BufferMax = rules.DefaultBufferMax
	}
	return fo
}

// restore puts back the shard states hold replaced (unless a reload replaced them since).
func (t *Topology) restore(saved map[string]*shardState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for s, st := range saved {
		if cur, ok := t.shards[s]; ok && cur.config == st.config {
			t.shards[s] = st
		}
	}
	t.changeLocked()
}

// release makes primary the primary of pl's shards, with pl.replicas, in their configured
// failover mode, and wakes the statements waiting.
func (t *Topology) release(pl plan, primary string) {
	t.mu.Lock()
	for _, s := range pl.shards {
		st, ok := t.shards[s]
		if !ok {
			continue
		}
		next := *st
		next.primary = primary
		next.fo = pl.fo
		next.replicas = slices.Clone(pl.replicas)
		next.failover = fmt.Sprintf("switched over from %s to %s at %s", pl.old, primary, time.Now().UTC().Format(time.RFC3339))
		t.shards[s] = &next
	}
	t.changeLocked()
	targets := t.targetsLocked()
	t.mu.Unlock()
	t.setTargets(targets)
}

// quiesce waits until no connection of the old primary is in use (its statements in flight
// finish; a transaction or a sticky session holding one makes the switchover fail), makes it
// read-only and returns what it wrote and whether it ran semi-synchronous replication.
func (t *Topology) quiesce(ctx context.Context, old string) (health.GTIDPos, bool, error) {
	t.mu.RLock()
	m := t.backends[old]
	t.mu.RUnlock()
	if m == nil {
		return nil, false, fmt.Errorf("backend %s is gone", old)
	}
	deadline := time.Now().Add(switchoverQuiesce)
	for {
		m.mu.Lock()
		n := m.inUse
		m.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, false, fmt.Errorf("%d connections to %s still in use after %v (open transactions or sticky sessions)", n, old, switchoverQuiesce)
		}
		time.Sleep(time.Millisecond) // statements in flight take milliseconds; no event to wait on
	}
	if err := t.admin(ctx, old, "SET GLOBAL read_only = 1"); err != nil {
		return nil, false, err
	}
	rows, err := t.query(ctx, old, "SELECT @@gtid_binlog_pos AS pos, @@rpl_semi_sync_master_enabled AS semi")
	if err != nil {
		return nil, false, err
	}
	pos, err := health.ParseGTIDPos(rows.Get(0, "pos"))
	return pos, rows.Get(0, "semi") == "1", err
}

// applyWithin waits until replica r applied pos, within switchoverCatchUp.
func (t *Topology) applyWithin(ctx context.Context, r string, pos health.GTIDPos) error {
	ctx, cancel := context.WithTimeout(ctx, switchoverCatchUp+time.Second)
	defer cancel()
	q := fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', %.3f)", pos.String(), switchoverCatchUp.Seconds())
	rows, err := t.query(ctx, r, q)
	if err != nil {
		return fmt.Errorf("waiting for %s to apply %s: %w", r, pos, err)
	}
	if len(rows.Values) != 1 || len(rows.Values[0]) != 1 || rows.Values[0][0] == nil || *rows.Values[0][0] != "0" {
		return fmt.Errorf("replica %s did not apply %s within %v", r, pos, switchoverCatchUp)
	}
	return nil
}

// demote makes the old primary a replica of the new one (semi-sync when the shard runs it),
// from what it wrote.
func (t *Topology) demote(ctx context.Context, old, primary string, fo rules.Failover, semiSync bool) error {
	change, err := t.changeMaster(old, primary, fo)
	if err != nil {
		return err
	}
	stmts := []string{"SET GLOBAL rpl_semi_sync_master_enabled = OFF", "STOP SLAVE", "SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos", change, "START SLAVE"}
	if semiSync {
		stmts = slices.Insert(stmts, 3, "SET GLOBAL rpl_semi_sync_slave_enabled = ON")
	}
	return t.admin(ctx, old, stmts...)
}
