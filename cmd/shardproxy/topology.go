package main

import (
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/topo"
)

var _ topo.Prober = (*health.Checker)(nil)

// newTopology builds the topology and the health checker feeding it. stopHealth stops the
// checker; call it before closing the topology.
func newTopology(snap *rules.Snapshot, log *slog.Logger, reg prometheus.Registerer) (*topo.Topology, func(), error) {
	var tp atomic.Pointer[topo.Topology] // probes that end before New returns are dropped
	hc := snap.Health()
	checker := health.New(health.Options{
		Interval: hc.Interval, Timeout: hc.Timeout, DownAfter: hc.DownAfter, Logger: log,
		Publish: func(st health.Status) {
			if t := tp.Load(); t != nil {
				t.Observe(st)
			}
		},
	})
	events := newFailoverMetrics(reg)
	t, err := topo.New(snap, topo.Options{Logger: log, Prober: checker, Events: events.observe})
	if err != nil {
		checker.Close()
		return nil, nil, err
	}
	tp.Store(t)
	return t, checker.Close, nil
}

// failoverMetrics counts failover events by kind.
type failoverMetrics struct {
	events *prometheus.CounterVec
}

func newFailoverMetrics(reg prometheus.Registerer) *failoverMetrics {
	m := &failoverMetrics{events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shardproxy_failover_events_total",
		Help: "Failover events: promoted, refused (automatic promotion refused: a replica may lack acknowledged writes), failed, settings (a primary runs without the settings failover depends on).",
	}, []string{"kind"})}
	reg.MustRegister(m.events)
	for _, k := range []topo.EventKind{topo.EventPromoted, topo.EventRefused, topo.EventFailed, topo.EventSettings, topo.EventSwitchover} {
		m.events.WithLabelValues(string(k))
	}
	return m
}

func (m *failoverMetrics) observe(e topo.Event) { m.events.WithLabelValues(string(e.Kind)).Inc() }
