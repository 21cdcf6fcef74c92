package topo

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/shardproxy/shardproxy/health"
)

// A proxy that starts after a shard's primary died never saw the primary's semi-sync state,
// which is what shows, in the ordinary case, that a replica holds every acknowledged write
// (plan: semiSyncProblem). The replicas' own view can stand in for it under one rule, which
// unseenPrimaryProblem checks:
//
//   - the configuration declares the shard semi-synchronous (failover.semi_sync_declared): the
//     primary ran rpl_semi_sync_master_enabled with wait_point AFTER_SYNC, wait_no_slave ON
//     and a timeout that never elapsed, and the configured replicas are all its semi-sync
//     replicas. Such a primary acknowledged a commit only after one of them had received
//     it; the proxy cannot check this on a server it never reached;
//   - every configured replica of the shards is reachable now (up, not fenced or offline):
//     one that is not may hold the only copy of the last acknowledged writes;
//   - every one has rpl_semi_sync_slave_enabled ON (so it acknowledged what it received) and
//     replicates from the dead primary (Master_Host and Master_Port are the primary's
//     replication_addr): a replica attached elsewhere says nothing about it;
//   - every one has lost the primary too (Slave_IO_Running is not Yes): without a probe of
//     its own that ever succeeded, the proxy needs the replicas' word that the primary is
//     gone, not just unreachable from the proxy (a hung primary with the replicas' sockets
//     still open is promoted once their IO threads give up, after slave_net_timeout).
//
// Then the ordinary promotion follows: every replica's IO thread stopped, the one that
// received the most (Gtid_IO_Pos, which must contain every other's) is promoted after it
// applied all of it. It holds every write any replica received, so every acknowledged one.

// unseenPrimaryProblem says why a promotion in place of old, a primary never probed
// successfully, could lose an acknowledged write of shards ("" when the rule above holds).
// Called with t.mu held.
func (t *Topology) unseenPrimaryProblem(old string, shards []string) string {
	var replicas []string
	for _, s := range shards {
		st := t.shards[s]
		if !st.fo.SemiSyncDeclared {
			return fmt.Sprintf("primary %s was never probed successfully, so its semi-sync state is unknown, and shard %s does not declare "+
				"failover.semi_sync_declared (with it, the replicas' own view would stand in for the primary's)", old, s)
		}
		for _, r := range st.replicas {
			if !slices.Contains(replicas, r) {
				replicas = append(replicas, r)
			}
		}
	}
	var want string
	if m := t.backends[old]; m != nil {
		want = m.cfg.ReplicationAddr
	}
	for _, r := range replicas {
		if why := t.fenced[r]; why != "" {
			return fmt.Sprintf("primary %s was never probed successfully and replica %s is fenced (%s): it may hold the only copy of acknowledged writes", old, r, why)
		}
		if p := replicaEvidence(t.health[r], want); p != "" {
			return fmt.Sprintf("primary %s was never probed successfully, and replica %s %s", old, r, p)
		}
	}
	return ""
}

// replicaEvidence says why replica status h cannot vouch for a dead primary whose
// replication address is primaryAddr ("" when it can).
func replicaEvidence(h health.Status, primaryAddr string) string {
	rep := h.Replica
	switch {
	case h.State != health.Up || h.Err != nil || h.Seen.IsZero():
		reason := h.Reason
		if reason == "" {
			reason = "not probed yet"
		}
		return fmt.Sprintf("is %s (%s): it may hold the only copy of acknowledged writes", h.State, reason)
	case rep == nil:
		return "replicates from nobody: it cannot vouch for what the primary acknowledged"
	case !h.Settings.SemiSyncSlave:
		return "has rpl_semi_sync_slave_enabled OFF: the shard is not semi-synchronous as declared"
	case !sameAddr(rep.MasterHost, rep.MasterPort, primaryAddr):
		return fmt.Sprintf("replicates from %s, not from the primary's replication_addr %s", net.JoinHostPort(rep.MasterHost, strconv.Itoa(rep.MasterPort)), primaryAddr)
	case rep.IORunning == "Yes":
		return "is still connected to the primary (Slave_IO_Running Yes): the primary may be alive, only unreachable from the proxy"
	}
	return ""
}

// sameAddr reports whether host:port is addr (host names compare without case).
func sameAddr(host string, port int, addr string) bool {
	h, p, err := net.SplitHostPort(addr)
	return err == nil && strings.EqualFold(h, host) && p == strconv.Itoa(port)
}
