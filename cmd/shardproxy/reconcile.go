package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardproxy/shardproxy/pool"
	"github.com/shardproxy/shardproxy/router"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// liveCluster is the cluster plus what a reload and the admin API change at run time: the
// backend settings each pool was made from (to reconcile pools on reload) and backends
// taken offline by an operator. It is the minimal reconcile the runtime topology (package
// topo, not written yet) will take over.
type liveCluster struct {
	*cluster
	drainTimeout time.Duration
	latency      *prometheus.HistogramVec // per backend; nil: not measured

	mu      sync.Mutex
	specs   map[string]rules.Backend // settings of each pool in cluster.pools
	offline map[string]bool
}

var (
	_ router.Backend           = (*liveCluster)(nil)
	_ router.PreferringBackend = (*liveCluster)(nil)
	_ reconciler               = (*liveCluster)(nil)
)

func newLiveCluster(snap *rules.Snapshot, log *slog.Logger) (*liveCluster, error) {
	cl, err := newCluster(snap, log)
	if err != nil {
		return nil, err
	}
	lc := &liveCluster{cluster: cl, drainTimeout: 30 * time.Second, specs: map[string]rules.Backend{}, offline: map[string]bool{}}
	for _, b := range snap.Backends() {
		lc.specs[b.Name] = *b
	}
	return lc, nil
}

// Apply makes the pools match snap: pools of backends whose settings are unchanged stay
// untouched; new backends get a pool; removed or changed ones are replaced and the old pool
// closed (its idle connections now, those in use when their statement releases them).
func (lc *liveCluster) Apply(_ context.Context, snap *rules.Snapshot) error {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	fresh := map[string]*pool.Pool{}
	want := map[string]rules.Backend{}
	for _, b := range snap.Backends() {
		want[b.Name] = *b
		if old, ok := lc.specs[b.Name]; ok && old == *b {
			continue
		}
		p, err := pool.New(poolOptions(b, lc.log))
		if err != nil {
			for _, p := range fresh {
				_ = p.Close()
			}
			return fmt.Errorf("backend %s: %w", b.Name, err)
		}
		fresh[b.Name] = p
	}
	var retired []*pool.Pool
	lc.cluster.mu.Lock()
	for name, p := range lc.cluster.pools {
		if _, keep := want[name]; !keep || fresh[name] != nil {
			retired = append(retired, p)
			delete(lc.cluster.pools, name)
			lc.log.Info("backend pool retired by a reload", "backend", name)
		}
	}
	for name, p := range fresh {
		lc.cluster.pools[name] = p
		lc.log.Info("backend pool opened by a reload", "backend", name)
	}
	lc.cluster.mu.Unlock()
	lc.specs = want
	for name := range lc.offline {
		if _, ok := want[name]; !ok {
			delete(lc.offline, name)
		}
	}
	for _, p := range retired {
		_ = p.Close() // in-use connections close as their statements release them
	}
	return nil
}

func (lc *liveCluster) isOffline(name string) bool {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.offline[name]
}

func (lc *liveCluster) Acquire(ctx context.Context, shard *rules.Shard) (router.Conn, error) {
	return lc.AcquirePreferring(ctx, shard, nil)
}

func (lc *liveCluster) AcquirePreferring(ctx context.Context, shard *rules.Shard, prefer router.Conn) (router.Conn, error) {
	if lc.isOffline(shard.Primary.Name) {
		return nil, sqlerr.New(sqlerr.ErForeignDataSource,
			"Unable to connect to foreign data source: backend %s of shard %s is offline (drained by an operator)", shard.Primary.Name, shard.Name)
	}
	c, err := lc.cluster.AcquirePreferring(ctx, shard, prefer)
	if err == nil && lc.latency != nil {
		bc := c.(*backendConn)
		bc.acquired, bc.backend = time.Now(), shard.Primary.Name
	}
	return c, err
}

// Release gives the connection back and observes how long it was held.
func (lc *liveCluster) Release(rc router.Conn) {
	bc := rc.(*backendConn)
	if lc.latency != nil && !bc.acquired.IsZero() {
		lc.latency.WithLabelValues(bc.backend).Observe(time.Since(bc.acquired).Seconds())
	}
	lc.cluster.Release(rc)
}

// errUnknownBackend is returned by SetOffline for a name the configuration does not have.
var errUnknownBackend = fmt.Errorf("unknown backend")

// SetOffline drains backend name: no new statements get its connections, idle ones close
// now, and it waits (up to the drain timeout or ctx) until the connections in use are
// released and closed. It returns how many were still in use when it gave up waiting.
func (lc *liveCluster) SetOffline(ctx context.Context, name string) (int, error) {
	lc.mu.Lock()
	if _, ok := lc.specs[name]; !ok {
		lc.mu.Unlock()
		return 0, fmt.Errorf("%w %q", errUnknownBackend, name)
	}
	lc.offline[name] = true
	lc.cluster.mu.Lock()
	p := lc.cluster.pools[name]
	delete(lc.cluster.pools, name)
	lc.cluster.mu.Unlock()
	lc.mu.Unlock()
	if p == nil {
		return 0, nil // already offline
	}
	_ = p.Close()
	ctx, cancel := context.WithTimeout(ctx, lc.drainTimeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if n := p.Stats().Open; n == 0 {
			return 0, nil
		}
		select {
		case <-ctx.Done():
			return p.Stats().Open, nil
		case <-tick.C:
		}
	}
}

// SetOnline gives an offline backend a new pool.
func (lc *liveCluster) SetOnline(name string) error {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	spec, ok := lc.specs[name]
	if !ok {
		return fmt.Errorf("%w %q", errUnknownBackend, name)
	}
	if !lc.offline[name] {
		return nil
	}
	p, err := pool.New(poolOptions(&spec, lc.log))
	if err != nil {
		return fmt.Errorf("backend %s: %w", name, err)
	}
	lc.cluster.mu.Lock()
	lc.cluster.pools[name] = p
	lc.cluster.mu.Unlock()
	delete(lc.offline, name)
	return nil
}

// backendState is one backend as the admin API shows it.
type backendState struct {
	Name    string
	Addr    string
	Offline bool
	Pool    pool.Stats
	HasPool bool
}

// Backends returns the state of every configured backend, in name order of specs.
func (lc *liveCluster) Backends(snap *rules.Snapshot) []backendState {
	lc.mu.Lock()
	offline := make(map[string]bool, len(lc.offline))
	for k, v := range lc.offline {
		offline[k] = v
	}
	lc.mu.Unlock()
	var out []backendState
	for _, b := range snap.Backends() {
		st := backendState{Name: b.Name, Addr: b.Addr, Offline: offline[b.Name]}
		if p, err := lc.cluster.pool(b); err == nil {
			st.Pool, st.HasPool = p.Stats(), true
		}
		out = append(out, st)
	}
	return out
}
