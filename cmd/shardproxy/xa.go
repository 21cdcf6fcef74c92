package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/txn"
	"github.com/shardproxy/shardproxy/rules"
)

// startRecovery creates the XA decision log on every server of a multi-shard database, then
// runs recovery passes (one now, then periodically) until the returned stop is called; stop
// waits for it.
func startRecovery(ctx context.Context, store *rules.Store, be engine.Backend, m txn.XAMetrics, log *slog.Logger) (stop func()) {
	rec := txn.NewRecoverer(txn.RecoverOptions{Rules: store, Backend: be, Metrics: m, Logger: log})
	_ = rec.Setup(ctx) // before serving; Run retries (and logs) where it failed
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rec.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// crashEnv names the test-only environment variable that makes the proxy exit abruptly at a
// point of a multi-shard commit ("prepared" or "committed"), so that integration tests can
// prove recovery. Never set it in production.
const crashEnv = "SHARDPROXY_TEST_XA_CRASH"

// crashExitCode is the exit status of a crash simulated through crashEnv.
const crashExitCode = 86

func xaTestHook(log *slog.Logger) func(string) {
	point := os.Getenv(crashEnv)
	if point == "" {
		return nil
	}
	log.Warn("TEST ONLY: the proxy exits at a point of multi-shard commits", "env", crashEnv, "point", point)
	return func(p string) {
		if p == point {
			os.Exit(crashExitCode)
		}
	}
}

// xaMetrics counts multi-shard commits and recoveries (txn.XAMetrics).
type xaMetrics struct {
	txns, recovered *prometheus.CounterVec
}

var _ txn.XAMetrics = (*xaMetrics)(nil)

func newXAMetrics(reg prometheus.Registerer) *xaMetrics {
	m := &xaMetrics{
		txns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardproxy_xa_transactions_total",
			Help: "Writes spanning shards (two-phase commits), by outcome.",
		}, []string{"outcome"}),
		recovered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardproxy_xa_recovered_branches_total",
			Help: "Prepared XA branches left by a proxy that recovery committed or rolled back, by decision.",
		}, []string{"decision"}),
	}
	reg.MustRegister(m.txns, m.recovered)
	for _, o := range []string{txn.XACommitted, txn.XARolledBack, txn.XAUnknown} {
		m.txns.WithLabelValues(o)
	}
	for _, d := range []string{"commit", "abort"} {
		m.recovered.WithLabelValues(d)
	}
	return m
}

func (m *xaMetrics) XATransaction(outcome string) { m.txns.WithLabelValues(outcome).Inc() }
func (m *xaMetrics) XARecovered(decision string)  { m.recovered.WithLabelValues(decision).Inc() }
