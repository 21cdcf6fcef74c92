package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/shardproxy/shardproxy/coord"
	"github.com/shardproxy/shardproxy/rules/source"
	"github.com/shardproxy/shardproxy/topo"
)

var (
	_ topo.Coordinator = (*coord.Etcd)(nil)
	_ coord.Target     = (*topo.Topology)(nil)
)

// sharedFlags configure the topology shared by the proxies of one etcd prefix.
type sharedFlags struct {
	proxyID   string
	leaderTTL time.Duration
}

func (f *sharedFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.proxyID, "proxy-id", "", "with etcd: this proxy's name in the leader election and the shared topology (default HOSTNAME/PID)")
	fs.DurationVar(&f.leaderTTL, "leader-ttl", coord.DefaultTTL, "with etcd: lease of the topology leader (whole seconds): a dead leader is replaced within about this long")
}

// sharedLoadTimeout bounds the start-up read of the shared topology.
const sharedLoadTimeout = 5 * time.Second

// newCoordinator returns the coordinator of the shared topology when the configuration comes
// from etcd, and nil (this proxy acts alone) otherwise.
func newCoordinator(src source.Source, f sharedFlags, log *slog.Logger) (*coord.Etcd, error) {
	e, ok := src.(*source.Etcd)
	if !ok {
		return nil, nil
	}
	id := f.proxyID
	if id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	return coord.New(coord.Options{Client: e.Client, Prefix: e.Prefix(), ID: id, TTL: f.leaderTTL, Logger: log})
}

// coordinatorOf is c as a topo.Coordinator: nil (not a typed nil) without one.
func coordinatorOf(c *coord.Etcd) topo.Coordinator {
	if c == nil {
		return nil
	}
	return c
}

// startCoordinator applies the shared topology to tp before the proxy serves (so that it
// never sends a statement to a backend the fleet fenced), then runs the election and the
// watch; the returned func stops them (giving up the leadership) and waits.
func startCoordinator(ctx context.Context, c *coord.Etcd, tp *topo.Topology, log *slog.Logger) func() {
	lctx, cancel := context.WithTimeout(ctx, sharedLoadTimeout)
	err := c.Load(lctx, tp)
	cancel()
	if err != nil {
		// The watch applies it as soon as etcd answers; until then this proxy does not lead.
		log.Error("could not read the shared topology at start; using the configuration's roles until etcd answers", "err", err)
	} else {
		log.Info("shared topology loaded", "version", tp.SharedVersion(), "proxy", c.Status().ID)
	}
	return goOwned(ctx, c.Run)
}

// registerSharedMetrics exports the election and the shared topology's version.
func registerSharedMetrics(reg prometheus.Registerer, c *coord.Etcd) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shardproxy_topology_leader",
			Help: "1 while this proxy leads the shared topology (it alone promotes and switches over), else 0.",
		}, func() float64 {
			if c.Status().Leading {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shardproxy_topology_leader_epoch",
			Help: "Epoch (etcd create revision of the election key) of the topology leader this proxy sees.",
		}, func() float64 { return float64(c.Status().LeaderEpoch) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shardproxy_topology_version",
			Help: "Version of the shared topology this proxy applied last (0: none published yet).",
		}, func() float64 { return float64(c.Status().Version) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "shardproxy_topology_refused_writes_total",
			Help: "Topology writes of this proxy that etcd refused because its leadership had ended.",
		}, func() float64 { return float64(c.Status().Refused) }),
	)
}
