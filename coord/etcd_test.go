package coord

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/shardproxy/shardproxy/internal/etcdtest"
	"github.com/shardproxy/shardproxy/topo"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
		goleak.IgnoreAnyFunction("net/http.(*connReader).backgroundRead"),
	)
}

// recorder is a Target that keeps every shared topology handed to it.
type recorder struct {
	mu       sync.Mutex
	versions []uint64
	at       map[uint64]time.Time
	changes  int
}

func (r *recorder) ApplyShared(s topo.Shared) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.versions = append(r.versions, s.Version)
	if r.at == nil {
		r.at = map[uint64]time.Time{}
	}
	r.at[s.Version] = time.Now()
	return true
}

func (r *recorder) Settle(topo.Shared) bool { return true }

func (r *recorder) LeadershipChanged() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes++
}

func (r *recorder) seen(v uint64) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.at[v]
	return at, ok
}

// member is one proxy's coordinator running on its own etcd client.
type member struct {
	c      *Etcd
	cli    *clientv3.Client
	rec    *recorder
	cancel context.CancelFunc
	done   chan struct{}
}

func newClient(t *testing.T, srv *etcdtest.Server) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func start(t *testing.T, srv *etcdtest.Server, prefix, id string) *member {
	t.Helper()
	m := &member{cli: newClient(t, srv), rec: &recorder{}, done: make(chan struct{})}
	var err error
	m.c, err = New(Options{Client: func() (*clientv3.Client, error) { return m.cli, nil }, Prefix: prefix, ID: id, TTL: time.Second, RetryInterval: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.c.Load(t.Context(), m.rec); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		m.c.Run(ctx)
	}()
	t.Cleanup(m.stop)
	return m
}

// stop ends Run (the leadership is given up) and waits for it.
func (m *member) stop() {
	m.cancel()
	<-m.done
}

// leaders waits until exactly one of ms leads and every one of them sees it as the leader,
// and returns it.
func leaders(t *testing.T, ms []*member, within time.Duration) *member {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var lead []*member
		agreed := true
		for _, m := range ms {
			if _, ok := m.c.Leading(); ok {
				lead = append(lead, m)
			}
		}
		if len(lead) == 1 {
			for _, m := range ms {
				if st := m.c.Status(); st.Leader != lead[0].c.o.ID || st.LeaderEpoch != lead[0].c.Status().Epoch {
					agreed = false
				}
			}
			if agreed {
				return lead[0]
			}
		}
		if time.Now().After(deadline) {
			var st []string
			for _, m := range ms {
				st = append(st, fmt.Sprintf("%+v", m.c.Status()))
			}
			t.Fatalf("no single agreed leader within %v: %v", within, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leadersExcept is leaders once old no longer leads.
func leadersExcept(t *testing.T, ms []*member, old *member, within time.Duration) *member {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if l := leaders(t, ms, within); l != old {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still leads after %v", old.c.o.ID, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func publish(t *testing.T, m *member, primary string) topo.Shared {
	t.Helper()
	epoch, ok := m.c.Leading()
	if !ok {
		t.Fatalf("%s does not lead", m.c.o.ID)
	}
	next := topo.Shared{Version: m.c.Status().Version + 1, Shards: map[string]topo.SharedShard{"s1": {Primary: primary}}}
	pub, err := m.c.Publish(t.Context(), epoch, next)
	if err != nil {
		t.Fatalf("%s: publish: %v", m.c.o.ID, err)
	}
	return pub
}

// TestElection: of three proxies exactly one leads; when it gives up (shutdown) or dies (its
// lease expires) another leads with a higher epoch, and every proxy applies what the leader
// publishes, in order, and a proxy started later reads it first.
func TestElection(t *testing.T) {
	srv := etcdtest.Start(t)
	ms := []*member{start(t, srv, "/e/", "p1"), start(t, srv, "/e/", "p2"), start(t, srv, "/e/", "p3")}
	first := leaders(t, ms, 10*time.Second)
	epoch1 := first.c.Status().Epoch
	pub := publish(t, first, "b1")
	if pub.Version != 1 || pub.Epoch != epoch1 || pub.Leader != first.c.o.ID {
		t.Fatalf("published %+v", pub)
	}
	waitApplied(t, ms, 1)

	// Shutdown: the leader resigns, another takes over at once.
	stopped := time.Now()
	first.stop()
	rest := without(ms, first)
	second := leadersExcept(t, rest, first, 5*time.Second)
	t.Logf("takeover after a resignation: %v", time.Since(stopped))
	if e := second.c.Status().Epoch; e <= epoch1 {
		t.Errorf("the new leader's epoch %d is not above %d", e, epoch1)
	}
	publish(t, second, "b2")
	waitApplied(t, rest, 2)

	// Death: the leader's etcd client goes away without resigning; its lease (1 s) expires.
	died := time.Now()
	_ = second.cli.Close()
	rest = without(rest, second)
	third := leadersExcept(t, rest, second, 10*time.Second)
	t.Logf("takeover after the leader's death (lease TTL 1s): %v", time.Since(died))
	publish(t, third, "b3")
	waitApplied(t, rest, 3)

	late := start(t, srv, "/e/", "p4")
	if _, ok := late.rec.seen(3); !ok {
		t.Errorf("a proxy started later did not apply version 3 before Run: %v", late.rec.versions)
	}
	for _, m := range append(rest, late) {
		m.rec.mu.Lock()
		for i := 1; i < len(m.rec.versions); i++ {
			if m.rec.versions[i] <= m.rec.versions[i-1] {
				t.Errorf("%s applied versions out of order: %v", m.c.o.ID, m.rec.versions)
			}
		}
		m.rec.mu.Unlock()
	}
}

func without(ms []*member, gone *member) []*member {
	var out []*member
	for _, m := range ms {
		if m != gone {
			out = append(out, m)
		}
	}
	return out
}

// waitApplied waits until every member applied version v, and reports the spread.
func waitApplied(t *testing.T, ms []*member, v uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var first, last time.Time
	for _, m := range ms {
		for {
			at, ok := m.rec.seen(v)
			if ok {
				if first.IsZero() || at.Before(first) {
					first = at
				}
				if at.After(last) {
					last = at
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not apply version %d", m.c.o.ID, v)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if spread := last.Sub(first); spread > time.Second {
		t.Errorf("version %d applied over %v by %d proxies, want within 1s", v, spread, len(ms))
	}
}

// TestStaleLeaderRefused: a leader whose lease ended (here revoked, as its expiry would) is
// refused by etcd when it writes with its old epoch, even with an up-to-date version, and the
// shared topology keeps the new leader's decisions.
func TestStaleLeaderRefused(t *testing.T) {
	srv := etcdtest.Start(t)
	a := start(t, srv, "/s/", "a")
	leaders(t, []*member{a}, 10*time.Second)
	b := start(t, srv, "/s/", "b")
	publish(t, a, "b1")
	waitApplied(t, []*member{a, b}, 1)
	epochA := a.c.Status().Epoch

	// The lease of a's election key ends behind its back.
	admin := newClient(t, srv)
	resp, err := admin.Get(t.Context(), a.c.lead.key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("a's election key: %v %v", resp, err)
	}
	if _, err := admin.Revoke(t.Context(), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	if l := leadersExcept(t, []*member{a, b}, a, 10*time.Second); l != b {
		t.Fatalf("%s leads, want b", l.c.o.ID)
	}
	publish(t, b, "b2")
	waitApplied(t, []*member{a, b}, 2)

	if err := a.c.Confirm(t.Context(), epochA); !errors.Is(err, topo.ErrNotLeader) {
		t.Errorf("the stale leader's Confirm: %v, want ErrNotLeader", err)
	}
	if epochB, _ := b.c.Leading(); b.c.Confirm(t.Context(), epochB) != nil {
		t.Errorf("the leader's Confirm failed")
	}
	// a writes as if it still led, with the version that follows the current one.
	next := topo.Shared{Version: 3, Shards: map[string]topo.SharedShard{"s1": {Primary: "b1"}}}
	_, err = a.c.Publish(t.Context(), epochA, next)
	if !errors.Is(err, topo.ErrNotLeader) {
		t.Fatalf("the stale leader's write: %v, want ErrNotLeader", err)
	}
	t.Logf("stale leader's write refused: %v", err)
	if n := a.c.Status().Refused; n != 1 {
		t.Errorf("refused writes counted: %d, want 1", n)
	}
	got, err := admin.Get(t.Context(), "/s/"+KeyTopology)
	if err != nil || len(got.Kvs) != 1 {
		t.Fatal(got, err)
	}
	if s := string(got.Kvs[0].Value); !containsAll(s, `"version":2`, `"primary":"b2"`, `"leader":"b"`) {
		t.Errorf("the shared topology after the refused write: %s", s)
	}
	// b's write based on an older version is a conflict, not a success.
	epochB, _ := b.c.Leading()
	if _, err := b.c.Publish(t.Context(), epochB, topo.Shared{Version: 2}); !errors.Is(err, topo.ErrSharedConflict) {
		t.Errorf("a write based on version 1 after version 2: %v, want ErrSharedConflict", err)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// TestWaitApplied: the leader learns when every running proxy applied a version; a proxy
// that stopped does not count, and one behind is named when the wait ends.
func TestWaitApplied(t *testing.T) {
	srv := etcdtest.Start(t)
	ms := []*member{start(t, srv, "/w/", "p1"), start(t, srv, "/w/", "p2"), start(t, srv, "/w/", "p3")}
	lead := leaders(t, ms, 10*time.Second)
	pub := publish(t, lead, "b1")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := lead.c.WaitApplied(ctx, pub.Version); err != nil {
		t.Fatalf("WaitApplied(%d): %v", pub.Version, err)
	}
	t.Logf("every proxy applied version %d within %v", pub.Version, time.Since(start))
	var other *member
	for _, m := range ms {
		if m != lead {
			other = m
		}
	}
	other.stop() // its session ends: its key goes with its lease
	pub = publish(t, lead, "b2")
	if err := lead.c.WaitApplied(ctx, pub.Version); err != nil {
		t.Fatalf("WaitApplied(%d) with a proxy stopped: %v", pub.Version, err)
	}
	short, cancel2 := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel2()
	err := lead.c.WaitApplied(short, pub.Version+1)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), lead.c.o.ID) {
		t.Errorf("WaitApplied of a version nobody has: %v", err)
	}
}

// TestRunStopsWhileEtcdIsDown: Run returns soon after its context ends although etcd is
// unreachable (the election's lease grant waited for etcd: a proxy did not stop on SIGTERM).
func TestRunStopsWhileEtcdIsDown(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := newClient(t, srv)
	srv.Stop()
	c, err := New(Options{Client: func() (*clientv3.Client, error) { return cli, nil }, Prefix: "/down/", ID: "p1", TTL: time.Second,
		RetryInterval: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	time.Sleep(500 * time.Millisecond) // the election, the watches and their reads wait for etcd
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		srv.StartAgain() // lets the stuck Run end, so the test can finish
		<-done
		t.Fatal("Run did not return within 5s of its context ending while etcd was down")
	}
}
