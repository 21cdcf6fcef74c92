package main

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shardproxy/shardproxy/protocol"
	"github.com/shardproxy/shardproxy/router"
)

// metrics implements router.Metrics with Prometheus counters registered on the registry
// passed in (never the default one).
type metrics struct {
	timeouts *prometheus.CounterVec
	kills    *prometheus.CounterVec
}

var _ router.Metrics = (*metrics)(nil)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardproxy_statement_timeouts_total",
			Help: "Statements that ran out of their deadline, by where the deadline came from.",
		}, []string{"source"}),
		kills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardproxy_kills_total",
			Help: "KILL QUERY sent to backends for interrupted statements, by why the statement stopped.",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.timeouts, m.kills)
	// Every label value exists from the start, so rates work before the first event.
	for _, s := range []string{router.SourceHint, router.SourceSession, router.SourceUser, router.SourceDatabase, router.SourceServer} {
		m.timeouts.WithLabelValues(s)
	}
	for _, r := range []string{router.ReasonTimeout, router.ReasonClientGone, router.ReasonKillQuery, router.ReasonKillConnection, router.ReasonOther} {
		m.kills.WithLabelValues(r)
	}
	return m
}

func (m *metrics) StatementTimeout(source string) { m.timeouts.WithLabelValues(source).Inc() }
func (m *metrics) BackendKill(reason string)      { m.kills.WithLabelValues(reason).Inc() }

// serveMetrics serves the registry at /metrics on addr; the returned func stops it and waits.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) func() {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", "err", err)
		}
	}()
	return func() {
		_ = hs.Close()
		<-done
	}
}

// registerRuntime adds the Go runtime and process collectors.
func registerRuntime(reg prometheus.Registerer) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// registerConnMetrics exports the protocol server's client connection counts.
func registerConnMetrics(reg prometheus.Registerer, srv *protocol.Server) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shardproxy_client_connections",
			Help: "Client connections open now.",
		}, func() float64 { c, _, _ := srv.ConnStats(); return float64(c) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "shardproxy_client_connections_total",
			Help: "Client connections accepted since start (refused ones included).",
		}, func() float64 { _, a, _ := srv.ConnStats(); return float64(a) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "shardproxy_client_connections_refused_total",
			Help: "Client connections refused because server.max_connections were open.",
		}, func() float64 { _, _, r := srv.ConnStats(); return float64(r) }),
	)
}

// newBackendLatency is the per-backend histogram of connection holds (see timedBackend).
func newBackendLatency(reg prometheus.Registerer) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "shardproxy_backend_query_duration_seconds",
		Help: "Time a statement held a backend connection, from acquiring it to releasing it " +
			"(the backend's execution plus relaying the result; inside a transaction, until the transaction ends), per backend.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"backend"})
	reg.MustRegister(h)
	return h
}
