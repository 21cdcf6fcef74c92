package main

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/rules/source"
)

// replicaDoc is testDoc with a replica and failover settings (each case edits a line).
const replicaDoc = `
listen: 127.0.0.1:3307
users: [{name: u, password_hash: "*0123456789ABCDEF0123456789ABCDEF01234567"}]
backends:
  - {name: b0, addr: "127.0.0.1:1", user: p, password: pw}
  - {name: b1, addr: "127.0.0.1:2", user: p, password: pw}
shards: [{name: s0, primary: b0, replicas: [b1], database: d0, failover: {mode: promote, buffer_timeout: 2s, buffer_max: 10}}]
databases:
  - {name: shop, default_shard: s0, read_write_split: true, max_replica_lag: 1s}
health: {interval: 1s, timeout: 500ms, down_after: 5}
`

// TestReloadHealthAndFailover: a reload that changes any health, failover or replica
// setting applies it to the running checker and topology, and reports none of them as
// needing a restart; restart-only settings are still reported.
func TestReloadHealthAndFailover(t *testing.T) {
	first, err := buildSnapshot([]byte(replicaDoc), nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	tp, checker, err := newTopology(first, log, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	defer checker.Close()
	src := &memSource{}
	store := rules.NewStore(first)
	r := newReloader(src, nil, store, liveTopology{tp: tp, checker: checker}, source.LastKnownGood{Path: t.TempDir() + "/lkg.yaml"},
		fixedSettings{snap: first}, prometheus.NewRegistry(), log)
	r.started(source.NewDoc([]byte(replicaDoc), 1), false)

	for i, tc := range []struct {
		name, from, to string
		restart        []string
		check          func() string // "" when the running proxy shows the new value
	}{
		{"HealthTiming", "health: {interval: 1s, timeout: 500ms, down_after: 5}", "health: {interval: 50ms, timeout: 80ms, down_after: 2}", nil,
			func() string {
				if got, want := checker.Timing(), (health.Timing{Interval: 50 * time.Millisecond, Timeout: 80 * time.Millisecond, DownAfter: 2}); got != want {
					return fmt.Sprintf("checker timing %+v", got)
				}
				return ""
			}},
		{"HealthDefaults", "health: {interval: 50ms, timeout: 80ms, down_after: 2}", "", nil,
			func() string {
				if got := checker.Timing(); got != (health.Timing{Interval: health.DefaultInterval, Timeout: health.DefaultTimeout, DownAfter: health.DefaultDownAfter}) {
					return fmt.Sprintf("checker timing %+v, not the defaults", got)
				}
				return ""
			}},
		{"FailoverMode", "mode: promote", "mode: follow", nil,
			func() string {
				if m := tp.Shards()[0].Mode; m != rules.FailoverFollow {
					return "mode " + m
				}
				return ""
			}},
		{"LagBound", "max_replica_lag: 1s", "max_replica_lag: 250ms", nil,
			func() string {
				db, _ := store.Load().Database("shop")
				if db.Split.MaxLag != 250*time.Millisecond {
					return "live lag bound " + db.Split.MaxLag.String()
				}
				return ""
			}},
		{"ReplicaRemoved", "replicas: [b1], database: d0, failover: {mode: follow", "database: d0, failover: {mode: none", nil,
			func() string {
				if rs := tp.Shards()[0].Replicas; len(rs) != 0 {
					return "replicas " + strings.Join(rs, ",")
				}
				return ""
			}},
		{"RestartOnly", "listen: 127.0.0.1:3307", "listen: 127.0.0.1:3308", []string{"listen"}, func() string { return "" }},
	} {
		doc := src.doc.Data
		if i == 0 {
			doc = []byte(replicaDoc)
		}
		next := strings.Replace(string(doc), tc.from, tc.to, 1)
		if next == string(doc) {
			t.Fatalf("%s: %q is not in the document", tc.name, tc.from)
		}
		src.set(next, int64(i+2), nil)
		res := r.Reload(t.Context(), "test")
		if res.Result != reloadApplied {
			t.Fatalf("%s: %s %s", tc.name, res.Result, res.Error)
		}
		if strings.Join(res.RestartRequired, ",") != strings.Join(tc.restart, ",") {
			t.Errorf("%s: restart required %v, want %v", tc.name, res.RestartRequired, tc.restart)
		}
		if msg := tc.check(); msg != "" {
			t.Errorf("%s: not applied: %s", tc.name, msg)
		}
	}
}
