package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// adminStatus reads GET /api/v1/status of the admin API at addr.
func adminStatus(t *testing.T, addr string) map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/api/v1/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestSharedSwitchover: with three proxies sharing etcd, each one's admin status names the
// same leader, epoch and topology version; a switchover asked of a proxy that does not lead
// is refused; one asked of the leader holds the shard on every proxy, and clients writing
// through all three see no error, every acknowledged write is on the new primary, and all
// three send statements to it afterwards.
func TestSharedSwitchover(t *testing.T) {
	f := newSharedFleet(t, true)
	names := []string{"p1", "p2", "p3"}
	proxies := map[string]*proxy{}
	admins := map[string]string{}
	for _, id := range names {
		p := f.start(t, id)
		proxies[id] = p
		waitFor(t, 10*time.Second, "the admin address of "+id, func() bool {
			m := adminAddrRE.FindStringSubmatch(p.log.String())
			if m != nil {
				admins[id] = m[1]
			}
			return m != nil
		})
		waitFor(t, 20*time.Second, "the replicas of the shard to be seen up by "+id, func() bool {
			l := p.log.String()
			return strings.Contains(l, "backend=b2 state=up") && strings.Contains(l, "backend=b3 state=up")
		})
	}
	var leader string
	var epoch int64
	waitFor(t, 15*time.Second, "a leader and a published topology", func() bool {
		leader, epoch = f.leader(t)
		return leader != "" && f.shared(t).Version > 0
	})
	version := f.shared(t).Version
	waitFor(t, 10*time.Second, "every proxy's admin status to name the leader and the version", func() bool {
		for _, id := range names {
			sh, _ := adminStatus(t, admins[id])["shared_topology"].(map[string]any)
			if sh == nil || sh["leader"] != leader || sh["leader_epoch"] != float64(epoch) || sh["topology_version"] != float64(version) ||
				sh["leading"] != (id == leader) || sh["proxy_id"] != id {
				return false
			}
		}
		return true
	})
	t.Logf("admin status of %s: %v", leader, adminStatus(t, admins[leader])["shared_topology"])

	switchover := func(id string) ([]byte, error) {
		cmd := exec.CommandContext(t.Context(), proxyBin, "switchover", "--shard", "s0", "--to", "b2", "--admin", admins[id])
		cmd.Env = append(os.Environ(), "SHARDPROXY_ADMIN_TOKEN="+adminAdminToken)
		return cmd.CombinedOutput()
	}
	var other string
	for _, id := range names {
		if id != leader {
			other = id
		}
	}
	if out, err := switchover(other); err == nil || !strings.Contains(string(out), "does not lead") {
		t.Errorf("a switchover asked of %s, which does not lead: %v: %s", other, err, out)
	}

	ctx, cancel := context.WithCancel(t.Context())
	results := startFleetLoad(ctx, t, proxies, names)
	time.Sleep(time.Second)
	switchAt := time.Now()
	out, err := switchover(leader)
	if err != nil {
		cancel()
		for _, id := range names {
			<-results[id]
		}
		t.Fatalf("switchover through the leader %s: %v: %s", leader, err, out)
	}
	time.Sleep(time.Second)
	cancel()
	var sw struct {
		PausedMS float64 `json:"paused_ms"`
	}
	_ = json.Unmarshal(out, &sw)
	for _, l := range strings.Split(proxies[leader].log.String(), "\n") {
		if strings.Contains(l, "switchover") {
			t.Logf("%s: %s", leader, l)
		}
	}
	// Every writer has stopped (its last statement answered) before the new primary is read.
	got := map[string]writeResult{}
	for _, id := range names {
		got[id] = <-results[id]
	}
	for _, id := range names {
		r := got[id]
		missing := missingOn(t, f.g.srv[1], r.acks)
		t.Logf("SHARED-SWITCHOVER proxy=%s gap=%.1fms acked=%d failed=%d missing=%d (leader paused %.1fms)",
			id, float64(longestGap(r.acks, switchAt).Microseconds())/1000, len(r.acks), r.failed, missing, sw.PausedMS)
		if r.failed != 0 || missing != 0 {
			t.Errorf("proxy %s: %d writes failed and %d acknowledged writes are missing on the new primary, want none", id, r.failed, missing)
		}
		checkServerID(t, proxies[id], id, 2)
	}
	if doc := f.shared(t); doc.Shards["s0"].Primary != "b2" || doc.Shards["s0"].Held || doc.Leader != leader {
		t.Errorf("shared topology after the switchover: %+v", doc)
	}
}
