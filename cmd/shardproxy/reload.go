package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardproxy/shardproxy/protocol"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/rules/source"
)

// reconciler brings the running backends (pools) in line with a snapshot before it is
// published. The runtime topology satisfies it; until one exists, the cluster does.
type reconciler interface {
	Apply(ctx context.Context, snap *rules.Snapshot) error
}

// Reload results, the label values of shardproxy_config_reloads_total.
const (
	reloadApplied   = "applied"   // a new configuration is live
	reloadUnchanged = "unchanged" // the document is the one already live
	reloadRejected  = "rejected"  // invalid: the running configuration stays
	reloadFailed    = "failed"    // the source could not be read, or reconciling failed
)

// reloadResult is the outcome of one reload attempt, as the admin API shows it.
type reloadResult struct {
	Time     time.Time `json:"time"`
	Trigger  string    `json:"trigger"` // start, watch, sighup, api, retry
	Result   string    `json:"result"`
	Revision int64     `json:"revision"`
	Digest   string    `json:"digest,omitempty"`
	Error    string    `json:"error,omitempty"`
	// RestartRequired names changed settings that take effect only after a restart.
	RestartRequired []string `json:"restart_required,omitempty"`
}

// reloader runs fetch → decode → validate → build → reconcile → swap. Reloads are
// serialised; a bad document never replaces the live snapshot.
type reloader struct {
	src      source.Source
	sec      rules.Secrets
	store    *rules.Store
	rec      reconciler
	lkg      source.LastKnownGood
	log      *slog.Logger
	fixed    fixedSettings // what the running process was started with
	validate func(data []byte) error
	results  *prometheus.CounterVec
	revision prometheus.Gauge

	mu sync.Mutex // serialises Reload

	stMu    sync.RWMutex
	live    reloadResult   // the reload that produced the live snapshot
	history []reloadResult // most recent last, at most historyLen
}

const historyLen = 20

func newReloader(src source.Source, sec rules.Secrets, store *rules.Store, rec reconciler, lkg source.LastKnownGood,
	fixed fixedSettings, reg prometheus.Registerer, log *slog.Logger) *reloader {
	r := &reloader{src: src, sec: sec, store: store, rec: rec, lkg: lkg, log: log, fixed: fixed,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardproxy_config_reloads_total",
			Help: "Configuration reload attempts, by result (applied, unchanged, rejected, failed).",
		}, []string{"result"}),
		revision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shardproxy_config_revision",
			Help: "etcd revision of the live configuration (0 for a file).",
		}),
	}
	reg.MustRegister(r.results, r.revision)
	for _, l := range []string{reloadApplied, reloadUnchanged, reloadRejected, reloadFailed} {
		r.results.WithLabelValues(l)
	}
	return r
}

// buildSnapshot decodes, validates and builds a document, including the password hashes.
func buildSnapshot(data []byte, sec rules.Secrets) (*rules.Snapshot, error) {
	cfg, err := rules.Parse(data)
	if err != nil {
		return nil, err
	}
	snap, err := rules.BuildWith(cfg, sec)
	if err != nil {
		return nil, err
	}
	for _, u := range snap.Users() {
		if _, err := protocol.ParseHash(u.PasswordHash); err != nil {
			return nil, fmt.Errorf("%w: user %q: %w", rules.ErrInvalid, u.Name, err)
		}
	}
	return snap, nil
}

// started records the snapshot the process started with.
func (r *reloader) started(doc source.Doc, fromLKG bool) {
	res := reloadResult{Time: time.Now(), Trigger: "start", Result: reloadApplied, Revision: doc.Revision, Digest: doc.Digest}
	if fromLKG {
		res.Trigger = "start-last-known-good"
	}
	r.record(res, true)
	r.results.WithLabelValues(reloadApplied).Inc()
}

// Reload fetches the document and applies it if it is new and valid. It returns the result
// (also recorded for Status).
func (r *reloader) Reload(ctx context.Context, trigger string) reloadResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.reload(ctx, trigger)
	res.Time = time.Now()
	r.results.WithLabelValues(res.Result).Inc()
	switch res.Result {
	case reloadApplied:
		r.log.Info("configuration reloaded", "source", r.src.Name(), "revision", res.Revision, "digest", short(res.Digest), "trigger", trigger)
		if len(res.RestartRequired) > 0 {
			r.log.Warn("changed settings take effect only after a restart; the running values stay", "settings", res.RestartRequired)
		}
	case reloadRejected:
		r.log.Error("configuration rejected; the running one keeps serving", "source", r.src.Name(), "revision", res.Revision, "err", res.Error)
	case reloadFailed:
		r.log.Warn("configuration reload failed; the running one keeps serving", "source", r.src.Name(), "err", res.Error)
	}
	r.record(res, res.Result == reloadApplied || res.Result == reloadUnchanged)
	return res
}

func (r *reloader) reload(ctx context.Context, trigger string) reloadResult {
	res := reloadResult{Trigger: trigger}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	doc, err := r.src.Fetch(fctx)
	cancel()
	if err != nil {
		res.Result, res.Error = reloadFailed, err.Error()
		return res
	}
	res.Revision, res.Digest = doc.Revision, doc.Digest
	if r.Live().Digest == doc.Digest {
		res.Result = reloadUnchanged
		return res
	}
	snap, err := r.check(doc.Data)
	if err != nil {
		res.Result, res.Error = reloadRejected, err.Error()
		return res
	}
	if err := r.rec.Apply(ctx, snap); err != nil {
		res.Result, res.Error = reloadFailed, fmt.Sprintf("reconciling backends: %v", err)
		return res
	}
	r.store.Swap(snap)
	res.Result = reloadApplied
	res.RestartRequired = r.fixed.changed(snap)
	if err := r.lkg.Save(r.src.Name(), doc); err != nil {
		r.log.Warn("could not save the last-known-good configuration", "err", err)
	}
	return res
}

// check builds data and applies the source's extra rules.
func (r *reloader) check(data []byte) (*rules.Snapshot, error) {
	if r.validate != nil {
		if err := r.validate(data); err != nil {
			return nil, err
		}
	}
	return buildSnapshot(data, r.sec)
}

func (r *reloader) record(res reloadResult, live bool) {
	r.stMu.Lock()
	defer r.stMu.Unlock()
	if live {
		if res.Result == reloadUnchanged && r.live.Digest != "" {
			r.live.Revision = res.Revision // the same document pushed again
		} else {
			r.live = res
		}
		r.revision.Set(float64(r.live.Revision))
	}
	r.history = append(r.history, res)
	if len(r.history) > historyLen {
		r.history = r.history[len(r.history)-historyLen:]
	}
}

// Live returns the reload that produced the live snapshot.
func (r *reloader) Live() reloadResult {
	r.stMu.RLock()
	defer r.stMu.RUnlock()
	return r.live
}

// History returns the recent reload attempts, most recent last.
func (r *reloader) History() []reloadResult {
	r.stMu.RLock()
	defer r.stMu.RUnlock()
	return append([]reloadResult(nil), r.history...)
}

// Run watches the source and reloads on every change until ctx is done; it returns when its
// watch goroutine has stopped. A reload whose fetch failed is retried every retry interval
// (retry at once with pending=true: started from the last-known-good copy).
func (r *reloader) Run(ctx context.Context, pending bool, retry time.Duration) {
	kick := make(chan struct{}, 1)
	notify := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.src.Watch(ctx, notify); err != nil && !errors.Is(err, context.Canceled) {
			r.log.Error("configuration watch stopped", "err", err)
		}
	})
	defer wg.Wait()
	trigger := "watch"
	if pending {
		notify()
		trigger = "retry"
	}
	t := time.NewTimer(retry)
	t.Stop()
	for {
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-kick:
		case <-t.C:
			trigger = "retry"
		}
		if res := r.Reload(ctx, trigger); res.Result == reloadFailed && ctx.Err() == nil {
			t.Reset(retry)
		}
		trigger = "watch"
	}
}

func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

// fixedSettings are the settings the process read once at start (listener, TLS files,
// protocol limits, admin address): a reload that changes them is applied otherwise and
// reports them as needing a restart. Everything else applies on reload: the health
// checker's timing (liveTopology), failover and replica settings (topo.Apply).
type fixedSettings struct {
	listenOverridden bool
	snap             *rules.Snapshot
}

// changed lists the fixed settings that differ in snap.
func (f fixedSettings) changed(snap *rules.Snapshot) []string {
	var out []string
	if !f.listenOverridden && snap.Listen() != f.snap.Listen() {
		out = append(out, "listen")
	}
	a, b := f.snap.Server(), snap.Server()
	for _, c := range []struct {
		name string
		diff bool
	}{
		{"server.version", a.Version != b.Version},
		{"server.max_allowed_packet", a.MaxAllowedPacket != b.MaxAllowedPacket},
		{"server.handshake_timeout", a.HandshakeTimeout != b.HandshakeTimeout},
		{"server.idle_timeout", a.IdleTimeout != b.IdleTimeout},
		{"server.write_timeout", a.WriteTimeout != b.WriteTimeout},
		{"server.max_connections", a.MaxConnections != b.MaxConnections},
		{"server.tls_cert", a.TLSCert != b.TLSCert},
		{"server.tls_key", a.TLSKey != b.TLSKey},
		{"admin.listen", f.snap.Admin().Listen != snap.Admin().Listen},
		{"admin.tls_cert", f.snap.Admin().TLSCert != snap.Admin().TLSCert},
		{"admin.tls_key", f.snap.Admin().TLSKey != snap.Admin().TLSKey},
	} {
		if c.diff {
			out = append(out, c.name)
		}
	}
	return out
}
