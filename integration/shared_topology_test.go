package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/shardproxy/shardproxy/coord"
	"github.com/shardproxy/shardproxy/internal/etcdtest"
	"github.com/shardproxy/shardproxy/internal/mariadbtest"
	"github.com/shardproxy/shardproxy/rules/source"
	"github.com/shardproxy/shardproxy/topo"
)

// sharedFleet is a replication group in promote mode whose configuration is in an embedded
// etcd, and the proxies started on it (each a `shardproxy serve` process).
type sharedFleet struct {
	g      *replGroup
	etcd   *etcdtest.Server
	cli    *clientv3.Client
	src    *source.Etcd
	prefix string
}

const sharedPasswordEnv = "SHARED_FO_PW"

// newSharedFleet starts the group and etcd and pushes the configuration; with admin, every
// proxy serves the admin API on a port of its own with adminAdminToken.
func newSharedFleet(t *testing.T, admin bool) *sharedFleet {
	t.Helper()
	f := &sharedFleet{g: startReplGroup(t, true), etcd: etcdtest.Start(t), prefix: "/shared-fleet/"}
	var err error
	f.src, err = source.NewEtcd(source.EtcdOptions{Endpoints: []string{f.etcd.Endpoint()}, Prefix: f.prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.src.Close() })
	f.cli, err = f.src.Client()
	if err != nil {
		t.Fatal(err)
	}
	// failoverConfig, with the backend passwords named (etcd documents hold no secret).
	data, err := json.Marshal(failoverConfig(t, f.g, map[string]any{"mode": "promote"}))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	// Three proxies probe every server: a longer probe timeout than the default keeps a
	// loaded machine's slow answers from looking like a dead server (a killed one refuses
	// connections at once).
	doc["health"] = map[string]any{"timeout": "1s"}
	if admin {
		doc["admin"] = map[string]any{"listen": "127.0.0.1:0",
			"tokens": []map[string]any{{"name": "operator", "role": "admin", "sha256": tokenHash(adminAdminToken)}}}
	}
	for _, b := range doc["backends"].([]any) {
		b := b.(map[string]any)
		delete(b, "password")
		b["password_env"] = sharedPasswordEnv
	}
	if data, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if _, err := f.src.Push(t.Context(), data, -1); err != nil {
		t.Fatal(err)
	}
	return f
}

// start runs a proxy named id on the fleet's etcd and waits until it writes through to the
// shard's primary.
func (f *sharedFleet) start(t *testing.T, id string) *proxy {
	t.Helper()
	return f.startTTL(t, id, "2s")
}

// startTTL is start with the leader's lease ttl.
func (f *sharedFleet) startTTL(t *testing.T, id, ttl string) *proxy {
	t.Helper()
	p := launchProxy(t, "shared fleet proxy "+id, []string{sharedPasswordEnv + "=" + mariadbtest.RootPassword},
		"--etcd-endpoints", f.etcd.Endpoint(), "--etcd-prefix", f.prefix, "--proxy-id", id, "--leader-ttl", ttl)
	waitWritesThrough(t, p.open(t, appUser, appPass, "fo"), 20*time.Second, "proxy "+id+" to write through to the primary")
	return p
}

// leader reads the election: the oldest key's value is the leader's id, its create revision
// the leader's epoch ("" while none).
func (f *sharedFleet) leader(t *testing.T) (string, int64) {
	t.Helper()
	resp, err := f.cli.Get(t.Context(), f.prefix+coord.KeyElection, clientv3.WithFirstCreate()...)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0
	}
	return string(resp.Kvs[0].Value), resp.Kvs[0].CreateRevision
}

// shared reads the shared topology (zero Version: none yet).
func (f *sharedFleet) shared(t *testing.T) topo.Shared {
	t.Helper()
	resp, err := f.cli.Get(t.Context(), f.prefix+coord.KeyTopology)
	if err != nil {
		t.Fatal(err)
	}
	var s topo.Shared
	if len(resp.Kvs) > 0 {
		if err := json.Unmarshal(resp.Kvs[0].Value, &s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// noTarget is a coord.Target that ignores what it is given (the test's stale leader).
type noTarget struct{}

func (noTarget) ApplyShared(topo.Shared) bool { return true }
func (noTarget) Settle(topo.Shared) bool      { return true }
func (noTarget) LeadershipChanged()           {}

// staleLeader wins the election before any proxy starts, then gives it up: its epoch is a
// leadership that has ended, as a leader that lost etcd or was paused would hold.
func (f *sharedFleet) staleLeader(t *testing.T) (*coord.Etcd, int64) {
	t.Helper()
	c, err := coord.New(coord.Options{Client: f.src.Client, Prefix: f.prefix, ID: "stale-leader", TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Load(t.Context(), noTarget{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	waitFor(t, 10*time.Second, "the stale leader to lead", func() bool { _, ok := c.Leading(); return ok })
	epoch, _ := c.Leading()
	cancel()
	<-done
	return c, epoch
}

// resumeAfter is when p's writes resumed after the fault: the acknowledgement that ends the
// longest gap after from.
func resumeAfter(acks []ack, from time.Time) time.Time {
	times := []time.Time{from}
	for _, a := range acks {
		if a.at.After(from) {
			times = append(times, a.at)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	resume, gap := from, time.Duration(-1)
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d > gap {
			gap, resume = d, times[i]
		}
	}
	return resume
}

// TestSharedTopology: three proxies share one etcd. Exactly one leads; when it dies another
// takes over within about the lease; when the shard's primary is killed exactly one proxy
// promotes a replica and all three route writes to it within 1 s of each other, losing no
// acknowledged write; a stale leader's write is refused; and a proxy started while the old
// primary is back up and writable sends it nothing.
func TestSharedTopology(t *testing.T) {
	f := newSharedFleet(t, false)
	stale, staleEpoch := f.staleLeader(t)
	names := []string{"p1", "p2", "p3"}
	proxies := map[string]*proxy{}
	for _, id := range names {
		proxies[id] = f.start(t, id)
	}
	var first string
	waitFor(t, 15*time.Second, "a leader and a published topology", func() bool {
		first, _ = f.leader(t)
		return first != "" && first != "stale-leader" && f.shared(t).Version > 0
	})
	t.Logf("leader: %s; shared topology version %d", first, f.shared(t).Version)

	// The leader dies (SIGKILL: no resignation); another takes over when its lease ends.
	killed := time.Now()
	if err := proxies[first].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-proxies[first].done
	var second string
	var secondEpoch int64
	waitFor(t, 15*time.Second, "another proxy to lead", func() bool {
		second, secondEpoch = f.leader(t)
		return second != "" && second != first
	})
	takeover := time.Since(killed)
	t.Logf("SHARED takeover after the leader proxy was killed: %.3fs (lease TTL 2s)", takeover.Seconds())
	if takeover > 6*time.Second {
		t.Errorf("takeover took %v, want about the 2 s lease", takeover)
	}
	// It restarts and reads the shared topology before it serves.
	proxies[first] = f.start(t, first)
	if !strings.Contains(proxies[first].log.String(), "shared topology loaded") {
		t.Errorf("the restarted proxy did not load the shared topology:\n%s", tail(proxies[first].log.String(), 4<<10))
	}

	// Clients write through every proxy; the primary is killed.
	ctx, cancel := context.WithCancel(t.Context())
	results := startFleetLoad(ctx, t, proxies, names)
	time.Sleep(time.Second)
	faultAt := time.Now()
	docker(t, "kill", f.g.srv[0].ContainerID())
	time.Sleep(6 * time.Second)
	cancel()
	doc := f.shared(t)
	var all []ack
	var resumes []time.Time
	for _, id := range names {
		r := <-results[id]
		all = append(all, r.acks...)
		resume := resumeAfter(r.acks, faultAt)
		resumes = append(resumes, resume)
		t.Logf("SHARED proxy=%s resumed %.3fs after the kill, %.3fs after the leader's write; gap %.3fs; acked=%d failed=%d",
			id, resume.Sub(faultAt).Seconds(), resume.Sub(doc.At).Seconds(), longestGap(r.acks, faultAt).Seconds(), len(r.acks), r.failed)
		// The 3 s bound of one proxy is TestFailover's; here three proxies and their probes
		// load the machine more: a generous margin. After the switch a write waits for the
		// repointed replica's first semi-sync acknowledgement, which no proxy controls.
		if resume.Sub(faultAt) >= 6*time.Second || !resume.After(faultAt) {
			t.Errorf("proxy %s: writes resumed %v after the kill, want within 6 s", id, resume.Sub(faultAt))
		}
	}
	spread := slices.MaxFunc(resumes, time.Time.Compare).Sub(slices.MinFunc(resumes, time.Time.Compare))
	t.Logf("SHARED all 3 proxies switched within %.3fs of each other; leader's write %.3fs after the kill (version %d, epoch %d, leader %s)",
		spread.Seconds(), doc.At.Sub(faultAt).Seconds(), doc.Version, doc.Epoch, doc.Leader)
	if spread > time.Second {
		t.Errorf("the proxies switched over %v, want within 1 s", spread)
	}

	for _, id := range names {
		for _, l := range strings.Split(proxies[id].log.String(), "\n") {
			if strings.Contains(l, "topo:") || strings.Contains(l, "coord:") || strings.Contains(l, "state changed") {
				t.Logf("%s: %s", id, l)
			}
		}
	}
	// Every proxy applied the leader's write within 1 s of it (its log's time of it, same
	// clock): the switch itself.
	var applied []time.Time
	for _, id := range names {
		at, ok := appliedAt(proxies[id].log.String(), doc.Version)
		if !ok {
			t.Errorf("proxy %s did not log applying version %d", id, doc.Version)
			continue
		}
		applied = append(applied, at)
		t.Logf("SHARED proxy=%s applied version %d %.3fs after the leader's write", id, doc.Version, at.Sub(doc.At).Seconds())
		if d := at.Sub(doc.At); d > time.Second {
			t.Errorf("proxy %s applied the leader's write %v after it, want within 1 s", id, d)
		}
	}
	if len(applied) == len(names) {
		s := slices.MaxFunc(applied, time.Time.Compare).Sub(slices.MinFunc(applied, time.Time.Compare))
		t.Logf("SHARED all 3 proxies applied the leader's decision within %.3fs of each other", s.Seconds())
		if s > time.Second {
			t.Errorf("the proxies applied the leader's decision over %v, want within 1 s", s)
		}
	}
	// Exactly one proxy promoted, the leader, with the epoch that won after the first died.
	var promoters []string
	for _, id := range names {
		if strings.Contains(proxies[id].log.String(), `msg="topo: promoted a replica"`) {
			promoters = append(promoters, id)
		}
	}
	if len(promoters) != 1 || promoters[0] != second || doc.Leader != second || doc.Epoch != secondEpoch {
		t.Errorf("promoted by %v; shared topology written by %s (epoch %d); want only %s (epoch %d)", promoters, doc.Leader, doc.Epoch, second, secondEpoch)
	}
	promotedName := doc.Shards["s0"].Primary
	if promotedName != "b2" && promotedName != "b3" || doc.Fenced["b1"] == "" {
		t.Fatalf("shared topology after the kill: %+v", doc)
	}
	promoted := f.g.srv[int(promotedName[1]-'1')]
	if missing := missingOn(t, promoted, all); missing > 0 {
		t.Errorf("%d of %d acknowledged writes are missing on the promoted replica %s", missing, len(all), promotedName)
	}
	wantID := int(promotedName[1] - '0')
	for _, id := range names {
		checkServerID(t, proxies[id], id, wantID)
	}

	// The stale leader writes with its ended epoch, based on the current version: refused.
	if err := stale.Load(t.Context(), noTarget{}); err != nil {
		t.Fatal(err)
	}
	_, err := stale.Publish(t.Context(), staleEpoch, topo.Shared{Version: doc.Version + 1,
		Shards: map[string]topo.SharedShard{"s0": {Primary: "b1", Replicas: []string{"b2", "b3"}}}})
	if !errors.Is(err, topo.ErrNotLeader) {
		t.Errorf("the stale leader's write (epoch %d): %v, want it refused", staleEpoch, err)
	}
	t.Logf("SHARED stale leader's write refused: %v", err)
	if after := f.shared(t); after.Version != doc.Version || after.Shards["s0"].Primary != promotedName {
		t.Errorf("the shared topology after the stale write: %+v", after)
	}

	// The old primary comes back, writable; a proxy that starts now sends it nothing.
	docker(t, "start", f.g.srv[0].ContainerID())
	waitFor(t, 60*time.Second, "the old primary to be back", func() bool {
		return f.g.srv[0].DB(t, "").PingContext(t.Context()) == nil
	})
	before := countInside(t, f.g.srv[0])
	late := f.start(t, "p4")
	checkServerID(t, late, "p4", wantID)
	mustExec(t, late.open(t, appUser, appPass, "fo"), "INSERT INTO t (id, writer) VALUES (-4, -4)")
	if after := countInside(t, f.g.srv[0]); after != before {
		t.Errorf("the fenced old primary had %s rows before it came back and %s after a proxy started", before, after)
	}
	for _, id := range names {
		checkServerID(t, proxies[id], id, wantID)
	}
}

// appliedAt finds when a proxy's log says it applied version v of the shared topology.
func appliedAt(logs string, v uint64) (time.Time, bool) {
	want := fmt.Sprintf(`msg="topo: applied the shared topology" version=%d `, v)
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, want) || !strings.HasPrefix(l, "time=") {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		return at, err == nil
	}
	return time.Time{}, false
}

// checkServerID checks that a new connection through p writes to the server with server_id want.
func checkServerID(t *testing.T, p *proxy, name string, want int) {
	t.Helper()
	var got int
	db := p.open(t, appUser, appPass, "fo")
	if err := db.QueryRowContext(t.Context(), "SELECT @@server_id").Scan(&got); err != nil {
		t.Fatalf("proxy %s: %v", name, err)
	}
	if got != want {
		t.Errorf("proxy %s sends statements to server_id %d, want %d", name, got, want)
	}
}
