package topo

import (
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/health"
)

// minSemiSyncTimeout is the rpl_semi_sync_master_timeout below which a primary is reported
// as able to fall back to asynchronous replication too soon (MariaDB's default is 10 s). A
// fallback is seen only at the next probe, and a primary that dies before it may have
// acknowledged writes no replica holds: the timeout must dwarf the probe interval and give an
// operator time to restore a replica; one minute is far above any failover the proxy runs.
const minSemiSyncTimeout = time.Minute

// activity is the replication activity last seen on a replica: what it had received and
// when the probes first saw that change.
type activity struct {
	ioPos   string
	changed time.Time
}

// Observe takes one probe result (the health checker's Publish). It records it, wakes
// statements waiting for a primary when a state changed, warns about a primary running
// without the settings failover guarantees depend on, and wakes the failover controller.
//
// A result for a backend no longer probed (a probe that ended as a reload or a fencing took
// it out of the targets) is dropped: it would outlive the next change of the targets, and a
// backend probed again later must not start from an old view of its health and lag.
func (t *Topology) Observe(st health.Status) {
	t.mu.Lock()
	if !t.probed[st.Backend] {
		t.mu.Unlock()
		return
	}
	old, had := t.health[st.Backend]
	t.health[st.Backend] = st
	if r := st.Replica; r != nil && st.Err == nil {
		switch a, seen := t.activity[st.Backend]; {
		case !seen:
			// The first sight of a replica's position is no evidence that it received
			// anything lately (a proxy started after its primary died sees its replicas'
			// positions for the first time after the primary is down).
			t.activity[st.Backend] = activity{ioPos: r.IOPos}
		case a.ioPos != r.IOPos:
			t.activity[st.Backend] = activity{ioPos: r.IOPos, changed: st.Checked}
		}
	}
	// A change of read_only matters to follow-mode shards as much as a change of state.
	stateChanged := !had || old.State != st.State || old.ReadOnly != st.ReadOnly
	if stateChanged {
		close(t.changed)
		t.changed = make(chan struct{})
	}
	warn := ""
	if st.Err == nil && t.isPrimaryLocked(st.Backend) {
		warn = settingsWarning(st)
	}
	logIt := warn != t.warned[st.Backend]
	t.warned[st.Backend] = warn
	t.mu.Unlock()
	if logIt && warn != "" {
		t.log.Warn("topo: primary runs without the settings that make failover lose no acknowledged write", "backend", st.Backend, "problem", warn)
		t.events(Event{Kind: EventSettings, Backend: st.Backend, Reason: warn})
	}
	if stateChanged || st.State != health.Up {
		select {
		case t.kick <- struct{}{}:
		default:
		}
	}
}

// isPrimaryLocked reports whether backend is some shard's current primary.
func (t *Topology) isPrimaryLocked(backend string) bool {
	for _, st := range t.shards {
		if st.primary == backend {
			return true
		}
	}
	return false
}

// settingsWarning says what a primary lacks for "no acknowledged write lost" ("" if nothing).
func settingsWarning(st health.Status) string {
	s := st.Settings
	var p []string
	if !s.LogBin {
		p = append(p, "log_bin is OFF")
	}
	if !s.GTIDStrictMode {
		p = append(p, "gtid_strict_mode is OFF")
	}
	if !s.SemiSyncMaster {
		p = append(p, "rpl_semi_sync_master_enabled is OFF")
	} else {
		if !strings.EqualFold(s.SemiSyncWaitPoint, "AFTER_SYNC") {
			p = append(p, "rpl_semi_sync_master_wait_point is "+s.SemiSyncWaitPoint+", not AFTER_SYNC")
		}
		if s.SemiSyncTimeout < minSemiSyncTimeout {
			p = append(p, "rpl_semi_sync_master_timeout is "+s.SemiSyncTimeout.String()+", under "+minSemiSyncTimeout.String()+
				" (a primary whose replica stops acknowledging falls back to asynchronous replication that soon)")
		}
		if !s.SemiSyncWaitNoSlave {
			p = append(p, "rpl_semi_sync_master_wait_no_slave is OFF (a primary whose last semi-sync replica goes away "+
				"falls back to asynchronous replication at once: its next acknowledged writes are on no replica)")
		}
		switch {
		case !s.SemiSyncActive:
			p = append(p, "semi-synchronous replication is not active (Rpl_semi_sync_master_status OFF: fell back to asynchronous)")
		case s.SemiSyncClients == 0:
			p = append(p, "no semi-sync replica is connected (Rpl_semi_sync_master_clients = 0): no write can be acknowledged durably")
		}
	}
	return strings.Join(p, "; ")
}

// targetsLocked is what the health checker should probe: the backends of shards in promote
// mode or with replicas (the read/write split needs their lag) and fenced backends (to fence
// them again when they come back), with a heartbeat on each current primary that is not
// fenced. Shards without failover or replicas are not probed: the proxy sends their servers
// only the clients' statements. It records the set as t.probed and forgets what the probes
// said about backends left out. Called with t.mu held for writing.
func (t *Topology) targetsLocked() []health.Target {
	probe := map[string]bool{}
	for _, st := range t.shards {
		if !managed(st.fo.Mode) && len(st.replicas) == 0 {
			continue // no failover and no replica to measure (replica.go reads their lag)
		}
		if st.primary != "" {
			probe[st.primary] = true
		}
		for _, r := range st.replicas {
			probe[r] = true
		}
	}
	for name, why := range t.fenced {
		if !IsOffline(why) { // an operator's offline backend is not re-fenced
			probe[name] = true
		}
	}
	out := make([]health.Target, 0, len(probe))
	t.probed = map[string]bool{}
	for _, name := range sortedNames(probe) {
		m, ok := t.backends[name]
		if !ok {
			continue
		}
		t.probed[name] = true
		b := m.cfg
		_, fenced := t.fenced[name]
		out = append(out, health.Target{Name: name, Addr: b.Addr, User: b.User, Password: b.Password,
			Heartbeat: !fenced && t.isPrimaryLocked(name)})
	}
	for name := range t.health {
		if !t.probed[name] {
			delete(t.health, name)
			delete(t.activity, name)
			delete(t.warned, name)
		}
	}
	return out
}

func (t *Topology) setTargets(ts []health.Target) {
	if t.prober != nil {
		t.prober.SetTargets(ts)
	}
}
