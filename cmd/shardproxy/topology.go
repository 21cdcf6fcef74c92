package main

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/topo"
)

var _ topo.Prober = (*health.Checker)(nil)

// newTopology builds the topology and the health checker feeding it. Close the checker
// before the topology. co, when not nil, shares the topology with the other proxies of an
// etcd prefix.
func newTopology(snap *rules.Snapshot, log *slog.Logger, reg prometheus.Registerer, co topo.Coordinator) (*topo.Topology, *health.Checker, error) {
	var tp atomic.Pointer[topo.Topology] // probes that end before New returns are dropped
	hc := healthTiming(snap)
	checker := health.New(health.Options{
		Interval: hc.Interval, Timeout: hc.Timeout, DownAfter: hc.DownAfter, Logger: log,
		Publish: func(st health.Status) {
			if t := tp.Load(); t != nil {
				t.Observe(st)
			}
		},
	})
	events := newFailoverMetrics(reg)
	t, err := topo.New(snap, topo.Options{Logger: log, Prober: checker, Events: events.observe, Coordinator: co})
	if err != nil {
		checker.Close()
		return nil, nil, err
	}
	tp.Store(t)
	return t, checker, nil
}

// healthTiming is the health checker's timing a snapshot configures.
func healthTiming(snap *rules.Snapshot) health.Timing {
	h := snap.Health()
	return health.Timing{Interval: h.Interval, Timeout: h.Timeout, DownAfter: h.DownAfter}
}

// liveTopology reconciles the running topology and its health checker with a reloaded
// snapshot: backends, shards and failover settings through Topology.Apply (which also
// tells the checker which backends to probe), then the probe timing (health.interval,
// timeout, down_after), which running probes take up at their next turn.
type liveTopology struct {
	tp      *topo.Topology
	checker *health.Checker
}

func (l liveTopology) Apply(ctx context.Context, snap *rules.Snapshot) error {
	if err := l.tp.Apply(ctx, snap); err != nil {
		return err
	}
	l.checker.SetTiming(healthTiming(snap))
	return nil
}

// failoverMetrics counts failover events by kind and times the switches to a new primary.
type failoverMetrics struct {
	events   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newFailoverMetrics(reg prometheus.Registerer) *failoverMetrics {
	m := &failoverMetrics{events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shardproxy_failover_events_total",
		Help: "Failover events: promoted, refused (automatic promotion refused: a replica may lack acknowledged writes), failed, settings (a primary runs without the settings failover depends on).",
	}, []string{"kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shardproxy_failover_duration_seconds",
			Help:    "Time from a shard's primary found lost (down, or not writable in follow mode) to a new writable primary in use, by mode (promote, follow).",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30},
		}, []string{"mode"}),
	}
	reg.MustRegister(m.events, m.duration)
	for _, mode := range []string{rules.FailoverPromote, rules.FailoverFollow} {
		m.duration.WithLabelValues(mode)
	}
	for _, k := range []topo.EventKind{topo.EventPromoted, topo.EventRefused, topo.EventFailed, topo.EventSettings, topo.EventSwitchover} {
		m.events.WithLabelValues(string(k))
	}
	return m
}

func (m *failoverMetrics) observe(e topo.Event) {
	m.events.WithLabelValues(string(e.Kind)).Inc()
	if e.Kind == topo.EventPromoted && (e.Mode == rules.FailoverPromote || e.Mode == rules.FailoverFollow) {
		m.duration.WithLabelValues(e.Mode).Observe(e.Took.Seconds())
	}
}
