package integration

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
)

// Soak parameters. SHARDPROXY_SOAK_DURATION sets how long the load runs (a Go duration;
// default 75s, the CI budget); SHARDPROXY_SOAK_CLIENTS the number of client connections.
const (
	soakDefaultDuration = 75 * time.Second
	soakDefaultClients  = 1000
	soakBackendUser     = "soakproxy" // the proxy's account on every shard, to find its sessions
	soakPreloadUsers    = 1000        // users 1..1000 own the preloaded rows
	soakPreloadPerUser  = 4
	soakPoolMaxOpen     = 48
	soakPoolIdleTimeout = 3 * time.Second
)

// soakEnv is four MariaDB servers (the last one restartable), each holding one shard of
// shop.orders, and the proxy in front of them with its metrics endpoint.
type soakEnv struct {
	servers     [4]*mariadbtest.Server
	shards      [4]*sql.DB
	proxy       *proxy
	metricsAddr string
}

// TestSoak runs 1,000 concurrent client connections through the proxy over four real
// MariaDB shards for a bounded time — point reads, writes, scatter queries, prepared
// statements, KILL QUERY, expiring MAX_EXECUTION_TIME hints — while the proxy's backend
// connections are killed on the servers and one server is restarted. Afterwards the proxy's
// goroutines, file descriptors and RSS must come back to their baseline, every acknowledged
// write must be on its shard, and every error a client saw must be an expected one.
func TestSoak(t *testing.T) {
	duration := soakDefaultDuration
	if v := os.Getenv("SHARDPROXY_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SHARDPROXY_SOAK_DURATION=%q: %v", v, err)
		}
		duration = d
	}
	clients := soakDefaultClients
	if v := os.Getenv("SHARDPROXY_SOAK_CLIENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SHARDPROXY_SOAK_CLIENTS=%q: want a positive number", v)
		}
		clients = n
	}
	raiseFileLimit(t, uint64(4*clients+1024))
	se := startSoakEnv(t)
	before := se.sample(t)
	t.Logf("baseline: %s", before)

	load := newSoakLoad(t, se, clients)
	peak := before
	stopSampling := se.sampleUntil(t, &peak)
	load.run(t, duration)
	stopSampling()
	t.Logf("peak during load: %s", peak)

	after := se.waitBaseline(t, before)
	t.Logf("after the load (clients gone, idle pools expired): %s", after)
	load.report(t, duration, before, peak, after)
	load.checkErrors(t)
	load.checkWrites(t, se)
}

// raiseFileLimit raises RLIMIT_NOFILE of the test process to at least n (up to the hard
// limit); the proxy, started afterwards, inherits it.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max < n {
		t.Fatalf("RLIMIT_NOFILE hard limit %d is below the %d file descriptors the soak needs", lim.Max, n)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
}

func startSoakEnv(t *testing.T) *soakEnv {
	t.Helper()
	var se soakEnv
	var wg sync.WaitGroup
	for i := range se.servers {
		opts := []mariadbtest.Option{mariadbtest.WithDatabases("shop")}
		if i == len(se.servers)-1 {
			opts = append(opts, mariadbtest.Restartable())
		}
		wg.Go(func() { se.servers[i] = mariadbtest.Start(t, opts...) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	cfg := &proxyConfig{
		Listen: "127.0.0.1:0",
		Server: map[string]any{"drain_timeout": "15s"},
		Users:  []userConfig{{Name: appUser, PasswordHash: hashPassword(t, "native", appPass)}},
		Schemes: []map[string]any{
			{"name": "by_user", "function": "hash", "slots": 4, "shards": []string{"s0", "s1", "s2", "s3"}},
		},
		Databases: []databaseConfig{{Name: "shop", DefaultShard: "s0", Tables: []map[string]any{
			{"name": "orders", "kind": "sharded", "key": "user_id", "scheme": "by_user"},
		}}},
	}
	for i, srv := range se.servers {
		srv.Exec(t,
			"CREATE USER IF NOT EXISTS '"+soakBackendUser+"'@'%' IDENTIFIED BY 'backendpw'",
			"GRANT ALL PRIVILEGES ON *.* TO '"+soakBackendUser+"'@'%'",
			"CREATE TABLE shop.orders (id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, amount INT NOT NULL, "+
				"note VARCHAR(32) NOT NULL, KEY (user_id))")
		se.shards[i] = srv.DB(t, "shop")
		name := fmt.Sprintf("b%d", i)
		cfg.Backends = append(cfg.Backends, backendConfig{Name: name, Addr: srv.Addr(), User: soakBackendUser, Password: "backendpw",
			Pool: poolConfig{MaxOpen: soakPoolMaxOpen, MaxIdle: soakPoolMaxOpen, AcquireTimeout: "30s", IdleTimeout: soakPoolIdleTimeout.String(),
				// Under this load on two cores a server may take more than a second to greet.
				DialTimeout: "10s"}})
		cfg.Shards = append(cfg.Shards, shardConfig{Name: fmt.Sprintf("s%d", i), Primary: name, Database: "shop"})
	}
	se.preload(t)
	se.metricsAddr = freeAddr(t)
	se.proxy = startProxyArgs(t, cfg, "--metrics-addr", se.metricsAddr, "--log-level", "info")
	httpGet(t, "http://"+se.metricsAddr+"/metrics") // waits until the metrics endpoint listens
	return &se
}

// preload writes soakPreloadPerUser rows for each of users 1..soakPreloadUsers directly on
// their shards: row id = user*100+k, amount = id % 1000.
func (se *soakEnv) preload(t *testing.T) {
	t.Helper()
	var vals [4][]string
	for u := int64(1); u <= soakPreloadUsers; u++ {
		s := userShard(t, u)
		for k := range int64(soakPreloadPerUser) {
			id := u*100 + k
			vals[s] = append(vals[s], fmt.Sprintf("(%d, %d, %d, 'preload')", id, u, id%1000))
		}
	}
	for i, v := range vals {
		mustExec(t, se.shards[i], "INSERT INTO orders (id, user_id, amount, note) VALUES "+strings.Join(v, ", "))
	}
}

// soakSample is what the proxy process holds at one moment.
type soakSample struct {
	goroutines int
	fds        int
	rssKB      int64
	heapKB     int64 // Go heap in use (go_memstats_heap_inuse_bytes)
}

func (s soakSample) String() string {
	return fmt.Sprintf("%d goroutines, %d fds, RSS %.1f MB, heap in use %.1f MB",
		s.goroutines, s.fds, float64(s.rssKB)/1024, float64(s.heapKB)/1024)
}

var (
	goroutinesRE = regexp.MustCompile(`(?m)^go_goroutines (\S+)$`)
	heapInuseRE  = regexp.MustCompile(`(?m)^go_memstats_heap_inuse_bytes (\S+)$`)
)

func (se *soakEnv) sample(t testing.TB) soakSample {
	t.Helper()
	s, err := se.trySample()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// trySample reads go_goroutines from /metrics, and the fd count and VmRSS from /proc.
func (se *soakEnv) trySample() (soakSample, error) {
	pid := se.proxy.cmd.Process.Pid
	resp, err := http.Get("http://" + se.metricsAddr + "/metrics")
	if err != nil {
		return soakSample{}, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return soakSample{}, err
	}
	m, h := goroutinesRE.FindSubmatch(body), heapInuseRE.FindSubmatch(body)
	if m == nil || h == nil {
		return soakSample{}, fmt.Errorf("no go_goroutines or go_memstats_heap_inuse_bytes in /metrics:\n%s", tail(string(body), 2000))
	}
	g, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return soakSample{}, err
	}
	heap, err := strconv.ParseFloat(string(h[1]), 64)
	if err != nil {
		return soakSample{}, err
	}
	fds, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		return soakSample{}, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return soakSample{}, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return soakSample{goroutines: int(g), fds: len(fds), rssKB: kb, heapKB: int64(heap) / 1024}, err
		}
	}
	return soakSample{}, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// sampleUntil records the maximum of each figure every 500 ms until the returned function
// is called.
func (se *soakEnv) sampleUntil(t *testing.T, peak *soakSample) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			s, err := se.trySample()
			if err != nil {
				t.Errorf("sampling the proxy: %v", err)
				return
			}
			peak.goroutines = max(peak.goroutines, s.goroutines)
			peak.fds = max(peak.fds, s.fds)
			peak.rssKB = max(peak.rssKB, s.rssKB)
			peak.heapKB = max(peak.heapKB, s.heapKB)
		}
	}()
	return func() { cancel(); <-done }
}

// Bounds on "back to the baseline": a few goroutines and descriptors (the metrics
// server's own connection and timers), the Go heap in use within 16 MiB of the start, and
// RSS within 96 MiB (the runtime returns freed pages to the kernel gradually: the heap is
// the figure that shows a leak, RSS the one that shows the pages do go back).
const (
	soakGoroutineSlack = 10
	soakFDSlack        = 6
	soakHeapSlackKB    = 16 << 10
	soakRSSSlackKB     = 96 << 10
)

// waitBaseline waits until the proxy is back to its baseline (clients gone, idle backend
// connections closed by the pools' idle timeout), within a minute.
func (se *soakEnv) waitBaseline(t *testing.T, base soakSample) soakSample {
	t.Helper()
	var last soakSample
	eventually(t, time.Minute, "the proxy back to its baseline", func() error {
		last = se.sample(t)
		switch {
		case last.goroutines > base.goroutines+soakGoroutineSlack:
			return fmt.Errorf("%d goroutines, baseline %d", last.goroutines, base.goroutines)
		case last.fds > base.fds+soakFDSlack:
			return fmt.Errorf("%d fds, baseline %d", last.fds, base.fds)
		case last.heapKB > base.heapKB+soakHeapSlackKB:
			return fmt.Errorf("heap in use %d kB, baseline %d kB", last.heapKB, base.heapKB)
		case last.rssKB > base.rssKB+soakRSSSlackKB:
			return fmt.Errorf("RSS %d kB, baseline %d kB", last.rssKB, base.rssKB)
		}
		return nil
	})
	return last
}
