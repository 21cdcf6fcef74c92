package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/rules/source"
)

// memSource is a Source whose document the test sets.
type memSource struct {
	mu  sync.Mutex
	doc source.Doc
	err error
}

func (m *memSource) Name() string { return "mem:" }
func (m *memSource) Fetch(context.Context) (source.Doc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.doc, m.err
}
func (m *memSource) Watch(ctx context.Context, _ func()) error { <-ctx.Done(); return ctx.Err() }
func (m *memSource) set(data string, rev int64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.doc, m.err = source.NewDoc([]byte(data), rev), err
}

// recordingReconciler records the snapshots it was asked to apply.
type recordingReconciler struct {
	applied []*rules.Snapshot
	err     error
}

func (r *recordingReconciler) Apply(_ context.Context, s *rules.Snapshot) error {
	if r.err != nil {
		return r.err
	}
	r.applied = append(r.applied, s)
	return nil
}

const testDoc = `
listen: 127.0.0.1:3307
users: [{name: u, password_hash: "*0123456789ABCDEF0123456789ABCDEF01234567"}]
backends: [{name: b0, addr: "127.0.0.1:3306", user: p, password_env: B0_PW}]
shards: [{name: s0, primary: b0, database: d0}]
databases:
  - {name: shop, default_shard: s0}
`

func TestReload(t *testing.T) {
	sec := rules.SecretsMap{"B0_PW": "pw"}
	first, err := buildSnapshot([]byte(testDoc), sec)
	if err != nil {
		t.Fatal(err)
	}
	store := rules.NewStore(first)
	src := &memSource{}
	rec := &recordingReconciler{}
	reg := prometheus.NewRegistry()
	r := newReloader(src, sec, store, rec, source.LastKnownGood{Path: t.TempDir() + "/lkg.yaml"},
		fixedSettings{snap: first}, reg, slog.New(slog.DiscardHandler))
	r.started(source.NewDoc([]byte(testDoc), 1), false)

	steps := []struct {
		name     string
		data     string
		rev      int64
		fetchErr error
		recErr   error
		want     string
		errFrag  string
		restart  []string
		liveRev  int64
		swapped  bool
	}{
		{name: "same document", data: testDoc, rev: 1, want: reloadUnchanged, liveRev: 1},
		{name: "same document pushed again", data: testDoc, rev: 5, want: reloadUnchanged, liveRev: 5},
		{name: "new database", data: strings.Replace(testDoc, "{name: shop, default_shard: s0}", "{name: shop, default_shard: s0, max_execution_time: 1s}", 1), rev: 6, want: reloadApplied, liveRev: 6, swapped: true},
		{name: "undecodable", data: "users: [", rev: 7, want: reloadRejected, errFrag: "decode config", liveRev: 6},
		{name: "invalid", data: strings.Replace(testDoc, "primary: b0", "primary: b9", 1), rev: 8, want: reloadRejected,
			errFrag: `primary "b9" is not a backend`, liveRev: 6},
		{name: "secret missing", data: strings.Replace(testDoc, "B0_PW", "NOPE", 1), rev: 9, want: reloadRejected,
			errFrag: "NOPE is not set", liveRev: 6},
		{name: "source down", fetchErr: errors.New("etcd unreachable"), want: reloadFailed, errFrag: "etcd unreachable", liveRev: 6},
		{name: "reconcile fails", data: strings.Replace(testDoc, "d0", "d1", 1), rev: 10, recErr: errors.New("no pool"), want: reloadFailed,
			errFrag: "no pool", liveRev: 6},
		{name: "restart-only settings", data: strings.Replace(testDoc, "127.0.0.1:3307", "127.0.0.1:4000", 1), rev: 11, want: reloadApplied,
			restart: []string{"listen"}, liveRev: 11, swapped: true},
	}
	for _, st := range steps {
		src.set(st.data, st.rev, st.fetchErr)
		rec.err = st.recErr
		before := store.Load()
		res := r.Reload(t.Context(), "test")
		if res.Result != st.want {
			t.Fatalf("%s: result %s (%s), want %s", st.name, res.Result, res.Error, st.want)
		}
		if !strings.Contains(res.Error, st.errFrag) || (st.errFrag == "") != (res.Error == "") {
			t.Errorf("%s: error %q, want it to contain %q", st.name, res.Error, st.errFrag)
		}
		if strings.Join(res.RestartRequired, ",") != strings.Join(st.restart, ",") {
			t.Errorf("%s: restart required %v, want %v", st.name, res.RestartRequired, st.restart)
		}
		if swapped := store.Load() != before; swapped != st.swapped {
			t.Errorf("%s: snapshot swapped = %v, want %v", st.name, swapped, st.swapped)
		}
		if got := r.Live().Revision; got != st.liveRev {
			t.Errorf("%s: live revision %d, want %d", st.name, got, st.liveRev)
		}
		if got := testutil.ToFloat64(r.revision); got != float64(st.liveRev) {
			t.Errorf("%s: revision gauge %v, want %d", st.name, got, st.liveRev)
		}
	}
	if len(rec.applied) != 2 {
		t.Errorf("reconciled %d snapshots, want 2", len(rec.applied))
	}
	for res, want := range map[string]float64{reloadApplied: 3, reloadUnchanged: 2, reloadRejected: 3, reloadFailed: 2} {
		if got := testutil.ToFloat64(r.results.WithLabelValues(res)); got != want {
			t.Errorf("reloads{result=%s} = %v, want %v", res, got, want)
		}
	}
	if h := r.History(); len(h) != len(steps)+1 || h[len(h)-1].Result != reloadApplied {
		t.Errorf("history has %d entries", len(h))
	}
	// The last applied document is the last-known-good copy.
	doc, err := r.lkg.Load()
	if err != nil || doc.Revision != 11 || !strings.Contains(string(doc.Data), "127.0.0.1:4000") {
		t.Errorf("last-known-good = %+v, %v", doc, err)
	}
}

func TestNoPlaintextSecrets(t *testing.T) {
	if err := noPlaintextSecrets([]byte(testDoc)); err != nil {
		t.Errorf("password_env refused: %v", err)
	}
	plain := strings.Replace(testDoc, "password_env: B0_PW", "password: hunter2", 1)
	if err := noPlaintextSecrets([]byte(plain)); err == nil || !errors.Is(err, rules.ErrInvalid) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("plaintext password: %v", err)
	}
}
