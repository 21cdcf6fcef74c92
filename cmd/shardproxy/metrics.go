package main

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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
