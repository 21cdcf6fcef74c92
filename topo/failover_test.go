package topo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

func promoteConfig(c *rules.Config) {
	c.Shards[0].Failover = rules.FailoverConfig{Mode: "promote", BufferTimeout: rules.Duration(300 * time.Millisecond), BufferMax: 2}
}

var goodSettings = health.Settings{LogBin: true, GTIDStrictMode: true, LogSlaveUpdates: true, SemiSyncMaster: true,
	SemiSyncActive: true, SemiSyncClients: 1, SemiSyncWaitPoint: "AFTER_SYNC", SemiSyncTimeout: time.Hour, SemiSyncSlave: true,
	SemiSyncWaitNoSlave: true}

// TestPlan: automatic promotion only when the primary is down for sure and the replicas
// provably hold every acknowledged write.
func TestPlan(t *testing.T) {
	down := time.Unix(1000, 0)
	up := func(name string) health.Status {
		return health.Status{Backend: name, State: health.Up, Seen: down, ReadOnly: true,
			Replica: &health.Replication{IORunning: "Connecting"}}
	}
	for _, tc := range []struct {
		name   string
		edit   func(p *health.Status, rs map[string]*health.Status, act map[string]activity)
		refuse string // "" = a plan
	}{
		{"Promotable", nil, ""},
		{"PrimarySuspectAgain", func(p *health.Status, _ map[string]*health.Status, _ map[string]activity) { p.State = health.Suspect }, "is suspect again"},
		{"NeverSeen", func(p *health.Status, _ map[string]*health.Status, _ map[string]activity) { p.Seen = time.Time{} }, "never probed"},
		{"SemiSyncOff", func(p *health.Status, _ map[string]*health.Status, _ map[string]activity) {
			p.Settings.SemiSyncMaster = false
		}, "disabled"},
		{"FellBackToAsync", func(p *health.Status, _ map[string]*health.Status, _ map[string]activity) {
			p.Settings.SemiSyncActive = false
		}, "fallen back to asynchronous"},
		{"AfterCommit", func(p *health.Status, _ map[string]*health.Status, _ map[string]activity) {
			p.Settings.SemiSyncWaitPoint = "AFTER_COMMIT"
		}, "wait_point was AFTER_COMMIT"},
		{"NoSemiSyncClientNoWait", func(p *health.Status, _ map[string]*health.Status, _ map[string]activity) {
			p.Settings.SemiSyncClients, p.Settings.SemiSyncWaitNoSlave = 0, false
		}, "Rpl_semi_sync_master_clients = 0"},
		// With wait_no_slave ON a commit waits for a replica: nothing was acknowledged
		// without one while the status stayed ON.
		{"NoSemiSyncClientWaits", func(p *health.Status, _ map[string]*health.Status, _ map[string]activity) {
			p.Settings.SemiSyncClients = 0
		}, ""},
		{"WaitNoSlaveOffWithClient", func(p *health.Status, _ map[string]*health.Status, _ map[string]activity) {
			p.Settings.SemiSyncWaitNoSlave = false
		}, ""},
		{"ReplicaUnreachable", func(_ *health.Status, rs map[string]*health.Status, _ map[string]activity) {
			rs["b3"].State, rs["b3"].Reason = health.Down, "connection refused"
		}, "replica b3 is down"},
		{"ReplicaStillReceives", func(_ *health.Status, _ map[string]*health.Status, act map[string]activity) {
			act["b2"] = activity{ioPos: "0-1-9", changed: down.Add(time.Millisecond)}
		}, "still receives"},
		{"ReceivedBeforeDown", func(_ *health.Status, _ map[string]*health.Status, act map[string]activity) {
			act["b2"] = activity{ioPos: "0-1-9", changed: down.Add(-time.Millisecond)}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTopo(t, snapshot(t, promoteConfig), time.Minute)
			p := health.Status{Backend: "b1", State: health.Down, Since: down, Seen: down.Add(-time.Second), Settings: goodSettings}
			rs := map[string]*health.Status{"b2": new(up("b2")), "b3": new(up("b3"))}
			act := map[string]activity{}
			if tc.edit != nil {
				tc.edit(&p, rs, act)
			}
			tp.mu.Lock()
			tp.health["b1"], tp.health["b2"], tp.health["b3"] = p, *rs["b2"], *rs["b3"]
			tp.activity = act
			tp.mu.Unlock()
			pl, err := tp.plan("b1", []string{"s1"})
			if tc.refuse == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if strings.Join(pl.choices, ",") != "b2,b3" || strings.Join(pl.replicas, ",") != "b2,b3" {
					t.Errorf("plan %+v", pl)
				}
				return
			}
			if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), tc.refuse) {
				t.Fatalf("err %v, want a refusal with %q", err, tc.refuse)
			}
		})
	}
}

// TestBuffer: while a promote-mode shard's primary is suspect, statements wait: bounded by
// the buffer timeout, the buffer size and their own deadline; they proceed when it changes.
func TestBuffer(t *testing.T) {
	snap := snapshot(t, promoteConfig)
	s1, _ := snap.Shard("s1")
	tp := newTopo(t, snap, time.Minute)
	tp.Observe(health.Status{Backend: "b1", State: health.Suspect, Reason: "i/o timeout"})

	start := time.Now()
	_, err := tp.Acquire(t.Context(), s1, rules.RolePrimary)
	if e, ok := sqlerr.As(err); !ok || e.Code != sqlerr.ErCantConnect || !strings.Contains(e.Message, "no writable primary after waiting") {
		t.Fatalf("buffer timeout: %v", err)
	}
	if el := time.Since(start); el < 300*time.Millisecond || el > 2*time.Second {
		t.Errorf("waited %v, want the 300ms buffer timeout", el)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = tp.Acquire(ctx, s1, rules.RolePrimary)
	if e, ok := sqlerr.As(err); !ok || e.Code != sqlerr.ErQueryTimeout {
		t.Fatalf("deadline while buffered: %v", err)
	}

	// Two waiters fill the buffer (BufferMax 2); a third is refused at once.
	errs := make(chan error, 2)
	for range 2 {
		go func() { _, err := tp.Acquire(context.Background(), s1, rules.RolePrimary); errs <- err }()
	}
	deadline := time.Now().Add(2 * time.Second)
	for tp.Shards()[0].Waiting < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	_, err = tp.Acquire(t.Context(), s1, rules.RolePrimary)
	if e, ok := sqlerr.As(err); !ok || e.Code != sqlerr.ErConCount {
		t.Fatalf("over the buffer: %v", err)
	}
	// The primary is back: the waiters proceed (to a dial that fails: nothing listens on
	// 127.0.0.1:1, which is the point: they left the buffer).
	tp.Observe(health.Status{Backend: "b1", State: health.Up})
	for range 2 {
		err := <-errs
		if e, ok := sqlerr.As(err); !ok || !strings.Contains(e.Message, "Can't connect to backend b1") {
			t.Errorf("waiter after the primary came back: %v", err)
		}
	}
}

// TestSettingsWarning: what a primary lacks for failover without loss.
func TestSettingsWarning(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*health.Settings)
		want string
	}{
		{"Good", func(*health.Settings) {}, ""},
		{"NoBinlog", func(s *health.Settings) { s.LogBin = false }, "log_bin is OFF"},
		{"NoStrict", func(s *health.Settings) { s.GTIDStrictMode = false }, "gtid_strict_mode is OFF"},
		{"NoSemiSync", func(s *health.Settings) { s.SemiSyncMaster = false }, "rpl_semi_sync_master_enabled is OFF"},
		{"ShortTimeout", func(s *health.Settings) { s.SemiSyncTimeout = 10 * time.Second }, "rpl_semi_sync_master_timeout is 10s"},
		{"FellBack", func(s *health.Settings) { s.SemiSyncActive = false }, "fell back to asynchronous"},
		{"AfterCommit", func(s *health.Settings) { s.SemiSyncWaitPoint = "AFTER_COMMIT" }, "not AFTER_SYNC"},
		{"TimeoutAtMinimum", func(s *health.Settings) { s.SemiSyncTimeout = time.Minute }, ""},
		{"TimeoutUnderMinimum", func(s *health.Settings) { s.SemiSyncTimeout = 59 * time.Second }, "rpl_semi_sync_master_timeout is 59s, under 1m0s"},
		{"WaitNoSlaveOff", func(s *health.Settings) { s.SemiSyncWaitNoSlave = false }, "rpl_semi_sync_master_wait_no_slave is OFF (a primary whose last semi-sync replica goes away falls back to asynchronous replication at once"},
		{"NoClients", func(s *health.Settings) { s.SemiSyncClients = 0 }, "Rpl_semi_sync_master_clients = 0"},
		{"FellBackNoClients", func(s *health.Settings) { s.SemiSyncActive, s.SemiSyncClients = false, 0 }, "Rpl_semi_sync_master_status OFF"},
		{"SemiSyncOffNoClients", func(s *health.Settings) { s.SemiSyncMaster, s.SemiSyncClients = false, 0 }, "rpl_semi_sync_master_enabled is OFF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := goodSettings
			tc.edit(&s)
			got := settingsWarning(health.Status{Settings: s})
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("warning %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSettingsWarningObserved: a primary's warning is logged and counted once per change
// (not on every probe) and shown in the backend's view; a replica gets none.
func TestSettingsWarningObserved(t *testing.T) {
	var events []Event
	tp, err := New(snapshot(t, promoteConfig), Options{Logger: quietLog(), Events: func(e Event) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tp.Close)
	promoted := goodSettings
	promoted.SemiSyncClients, promoted.SemiSyncWaitNoSlave = 0, false // the demo after a promotion
	steps := []struct {
		backend  string
		settings health.Settings
		warning  string // b's view afterwards
		events   int    // settings events so far
	}{
		{"b1", goodSettings, "", 0},
		{"b1", promoted, "Rpl_semi_sync_master_clients = 0", 1},
		{"b1", promoted, "Rpl_semi_sync_master_clients = 0", 1},
		{"b2", promoted, "", 1},
		{"b1", goodSettings, "", 1},
		{"b1", promoted, "wait_no_slave is OFF", 2},
	}
	for i, s := range steps {
		tp.Observe(health.Status{Backend: s.backend, State: health.Up, Seen: time.Unix(1, 0), Settings: s.settings})
		var got string
		for _, b := range tp.Backends() {
			if b.Name == s.backend {
				got = b.Warning
			}
		}
		if (s.warning == "") != (got == "") || !strings.Contains(got, s.warning) {
			t.Errorf("step %d: %s warning %q, want %q", i, s.backend, got, s.warning)
		}
		if len(events) != s.events {
			t.Errorf("step %d: %d settings events, want %d", i, len(events), s.events)
		}
	}
	for _, e := range events {
		if e.Kind != EventSettings || e.Backend != "b1" {
			t.Errorf("event %+v", e)
		}
	}
}
