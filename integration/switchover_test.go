package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSwitchover: `shardproxy switchover --shard s0 --to b2` against a running proxy while 8
// clients write as fast as they can: no client sees an error, statements are held at most
// 500 ms, every acknowledged write is on the new primary, and the old primary and the other
// replica replicate from it.
func TestSwitchover(t *testing.T) {
	g := startReplGroup(t, false)
	cfg := failoverConfig(t, g, map[string]any{"mode": "promote"})
	cfg.Admin = map[string]any{"listen": "127.0.0.1:0",
		"tokens": []map[string]any{{"name": "operator", "role": "admin", "sha256": tokenHash(adminAdminToken)}}}
	p := startProxy(t, cfg)
	var adminAddr string
	waitFor(t, 10*time.Second, "the admin address in the log", func() bool {
		m := adminAddrRE.FindStringSubmatch(p.log.String())
		if m != nil {
			adminAddr = m[1]
		}
		return m != nil
	})
	probe := p.open(t, appUser, appPass, "fo")
	waitFor(t, 10*time.Second, "the replicas to be seen replicating", func() bool {
		_, err := probe.ExecContext(t.Context(), "INSERT INTO t (id, writer) VALUES (-1, -1) ON DUPLICATE KEY UPDATE writer = -1")
		l := p.log.String()
		return err == nil && strings.Contains(l, "backend=b2 state=up") && strings.Contains(l, "backend=b3 state=up")
	})

	ctx, cancel := context.WithCancel(t.Context())
	done := startWriteLoad(ctx, t, p, 8, 1_000_000_000)
	time.Sleep(time.Second) // steady load before the switchover
	cmd := exec.CommandContext(t.Context(), proxyBin, "switchover", "--shard", "s0", "--to", "b2", "--admin", adminAddr)
	cmd.Env = append(os.Environ(), "SHARDPROXY_ADMIN_TOKEN="+adminAdminToken)
	switchAt := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		cancel()
		<-done
		t.Fatalf("shardproxy switchover: %v: %s", err, out)
	}
	time.Sleep(time.Second) // writes go on on the new primary
	cancel()
	res := <-done
	var sw struct {
		Old      string  `json:"old_primary"`
		New      string  `json:"new_primary"`
		PausedMS float64 `json:"paused_ms"`
		Position string  `json:"gtid_position"`
	}
	if err := json.Unmarshal(out, &sw); err != nil {
		t.Fatalf("switchover output %q: %v", out, err)
	}
	gap := longestGap(res.acks, switchAt)
	after := ackedAfter(res.acks, switchAt)
	t.Logf("SWITCHOVER %s -> %s paused=%.1fms client_gap=%.1fms acked=%d acked_after=%d failed=%d position=%s",
		sw.Old, sw.New, sw.PausedMS, float64(gap.Microseconds())/1000, len(res.acks), after, res.failed, sw.Position)
	if sw.Old != "b1" || sw.New != "b2" {
		t.Errorf("switched from %q to %q, want b1 to b2", sw.Old, sw.New)
	}
	if res.failed != 0 {
		t.Errorf("%d client writes failed during the switchover, want none", res.failed)
	}
	if sw.PausedMS > 500 {
		t.Errorf("statements were held %.1f ms, want at most 500", sw.PausedMS)
	}
	if after == 0 {
		t.Fatal("no write acknowledged after the switchover")
	}
	var serverID int
	if err := probe.QueryRowContext(t.Context(), "SELECT @@server_id").Scan(&serverID); err != nil || serverID != 2 {
		t.Fatalf("the proxy writes to server_id %d (%v) after the switchover, want 2", serverID, err)
	}
	if missing := missingOn(t, g.srv[1], res.acks); missing > 0 {
		t.Errorf("%d of %d acknowledged writes are missing on the new primary", missing, len(res.acks))
	}
	// The old primary and the other replica follow the new one.
	g.sync(t, g.srv[1], g.srv[0], g.srv[2])
	var ro int
	if err := g.srv[0].DB(t, "").QueryRowContext(t.Context(), "SELECT @@read_only").Scan(&ro); err != nil || ro != 1 {
		t.Errorf("old primary read_only = %d (%v), want 1", ro, err)
	}
	// A switchover the proxy refuses changes nothing and says why.
	bad := exec.CommandContext(t.Context(), proxyBin, "switchover", "--shard", "s0", "--to", "b9", "--admin", adminAddr)
	bad.Env = append(os.Environ(), "SHARDPROXY_ADMIN_TOKEN="+adminAdminToken)
	if out, err := bad.CombinedOutput(); err == nil {
		t.Errorf("switchover to an unknown replica succeeded: %s", out)
	} else {
		t.Logf("refused: %s", out)
	}
}
