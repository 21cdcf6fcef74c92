package main

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/router"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/topo"
)

// timedBackend is the topology as the router's Backend, timing how long each connection is
// held (shardproxy_backend_query_duration_seconds).
type timedBackend struct {
	*topo.Topology
	latency *prometheus.HistogramVec
	held    sync.Map // *topo.Conn → time.Time acquired
}

var (
	_ router.Backend           = (*timedBackend)(nil)
	_ router.PreferringBackend = (*timedBackend)(nil)
)

func newTimedBackend(tp *topo.Topology, reg prometheus.Registerer) *timedBackend {
	return &timedBackend{Topology: tp, latency: newBackendLatency(reg)}
}

func (b *timedBackend) Acquire(ctx context.Context, shard *rules.Shard, role rules.Role) (router.Conn, error) {
	return b.AcquirePreferring(ctx, shard, role, nil)
}

func (b *timedBackend) AcquirePreferring(ctx context.Context, shard *rules.Shard, role rules.Role, prefer router.Conn) (router.Conn, error) {
	c, err := b.Topology.AcquirePreferring(ctx, shard, role, prefer)
	if err == nil {
		b.held.Store(c, time.Now())
	}
	return c, err
}

func (b *timedBackend) Release(c router.Conn) {
	if t, ok := b.held.LoadAndDelete(c); ok {
		if tc, ok := c.(*topo.Conn); ok {
			b.latency.WithLabelValues(tc.Server()).Observe(time.Since(t.(time.Time)).Seconds())
		}
	}
	b.Topology.Release(c)
}

// backendCollector exports every backend's pool, health and role at scrape time from the
// topology's view. Pool counters restart when a reload replaces a backend's pool
// (Prometheus' rate() handles the reset).
type backendCollector struct{ tp *topo.Topology }

func desc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, []string{"backend"}, nil)
}

var backendDescs = struct {
	open, idle, inUse, waiting, maxOpen, waits, waitSecs, timeouts, dials, dialErrors, offline, up, primary, lag *prometheus.Desc
}{
	open:       desc("shardproxy_pool_open_connections", "Connections open (idle, in use and being dialled), per backend."),
	idle:       desc("shardproxy_pool_idle_connections", "Idle connections, per backend."),
	inUse:      desc("shardproxy_pool_in_use_connections", "Connections handed to statements, per backend."),
	waiting:    desc("shardproxy_pool_waiting", "Statements waiting for a connection now, per backend."),
	maxOpen:    desc("shardproxy_pool_max_open_connections", "The configured max_open, per backend."),
	waits:      desc("shardproxy_pool_waits_total", "Acquires that had to wait for a connection, per backend."),
	waitSecs:   desc("shardproxy_pool_wait_seconds_total", "Time spent waiting for a connection, per backend."),
	timeouts:   desc("shardproxy_pool_acquire_timeouts_total", "Waits that ended with the pool's acquire_timeout (the client got 1040), per backend."),
	dials:      desc("shardproxy_pool_dials_total", "Connections dialled, per backend."),
	dialErrors: desc("shardproxy_pool_dial_errors_total", "Failed dials, per backend."),
	offline:    desc("shardproxy_backend_offline", "1 while an operator has taken the backend offline (admin API), else 0."),
	up:         desc("shardproxy_backend_up", "1 when the backend's last health probe succeeded (state up), else 0."),
	primary:    desc("shardproxy_backend_primary", "1 when the backend is the current primary of at least one shard, else 0."),
	lag:        desc("shardproxy_backend_replication_lag_seconds", "A replica's replication lag measured by the health checker's heartbeat (absent when unknown)."),
}

func (backendCollector) Describe(ch chan<- *prometheus.Desc) {
	d := backendDescs
	for _, x := range []*prometheus.Desc{d.open, d.idle, d.inUse, d.waiting, d.maxOpen, d.waits, d.waitSecs, d.timeouts,
		d.dials, d.dialErrors, d.offline, d.up, d.primary, d.lag} {
		ch <- x
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (bc backendCollector) Collect(ch chan<- prometheus.Metric) {
	d := backendDescs
	for _, b := range bc.tp.Backends() {
		g := func(x *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(x, prometheus.GaugeValue, v, b.Name)
		}
		c := func(x *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(x, prometheus.CounterValue, v, b.Name)
		}
		st := b.Pool
		g(d.open, float64(st.Open))
		g(d.idle, float64(st.Idle))
		g(d.inUse, float64(st.InUse))
		g(d.waiting, float64(st.Waiting))
		g(d.maxOpen, float64(st.MaxOpen))
		c(d.waits, float64(st.WaitCount))
		c(d.waitSecs, st.WaitDuration.Seconds())
		c(d.timeouts, float64(st.AcquireTimeouts))
		c(d.dials, float64(st.Dials))
		c(d.dialErrors, float64(st.DialErrors))
		g(d.offline, boolValue(topo.IsOffline(b.Fenced)))
		g(d.up, boolValue(b.Health.State == health.Up))
		g(d.primary, boolValue(b.Role == rules.RolePrimary))
		if r := b.Health.Replica; r != nil && r.LagKnown {
			g(d.lag, r.Lag.Seconds())
		}
	}
}
