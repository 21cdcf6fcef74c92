package integration

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testHostileClients checks that memory a client controls before it logs in is bounded:
// thousands of connections that announce huge packets, or say nothing, cost the proxy little,
// are dropped (at once, or at the handshake timeout), and well-behaved clients keep working.
func testHostileClients(t *testing.T, e *env) {
	m := dbMap{Logical: "hostile", Physical: "hostile_phys"}
	const (
		floodConns = 2000
		rssLimit   = 200 << 20
		handshake  = 6 * time.Second
	)
	raiseFDLimit(t, 2*floodConns+1024)
	cfg := e.config(t, m)
	cfg.Server["handshake_timeout"] = handshake.String()
	p := startProxy(t, cfg)
	pid := p.cmd.Process.Pid
	db := p.open(t, appUser, appPass, m.Logical)
	if v := queryString(t, db, "SELECT 40 + 2"); v != "42" {
		t.Fatalf("SELECT 40 + 2 = %s", v)
	}
	base := vmRSS(t, pid)
	t.Logf("proxy RSS before the flood: %d MB", base>>20)

	// Wave 1: every connection sends a header announcing 16 MiB, and nothing more. The
	// proxy must not allocate what is announced; it refuses the packet at once.
	announce16M := []byte{0xff, 0xff, 0xff, 1}
	conns := floodOpen(t, p.Addr, floodConns, announce16M, func(opened int) {
		if rss := vmRSS(t, pid); rss > rssLimit {
			t.Fatalf("proxy RSS %d MB after %d connections announcing 16 MiB (limit %d MB)", rss>>20, opened, rssLimit>>20)
		}
	})
	peak := vmRSS(t, pid)
	for i, c := range conns {
		code, err := c.errThenClose(handshake + 10*time.Second)
		if err != nil || code != 1043 {
			t.Fatalf("connection %d announcing 16 MiB before login: error %d, %v; want ERR 1043 (Bad handshake), then closed by the proxy", i, code, err)
		}
	}
	t.Logf("wave 1: %d connections announcing 16 MiB: RSS %d MB after opening them, all refused with 1043", floodConns, peak>>20)

	// Wave 2: every connection announces a packet the handshake allows and sends one byte
	// of it: the proxy holds them until handshake_timeout and then closes them, while
	// well-behaved clients are served.
	start := time.Now()
	conns = floodOpen(t, p.Addr, floodConns, []byte{0x00, 0x10, 0x00, 1, 0x0d}, func(opened int) {
		if rss := vmRSS(t, pid); rss > rssLimit {
			t.Fatalf("proxy RSS %d MB after %d silent connections (limit %d MB)", rss>>20, opened, rssLimit>>20)
		}
	})
	opened := time.Since(start)
	if opened > handshake/2 {
		t.Fatalf("opening %d connections took %v: too slow to observe them held for handshake_timeout %v", floodConns, opened, handshake)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				want := strconv.Itoa(g*100 + i)
				var got string
				if err := db.QueryRow("SELECT " + want).Scan(&got); err != nil || got != want {
					errs <- fmt.Errorf("query during the flood: %q, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	peak = max(peak, vmRSS(t, pid))
	if peak > rssLimit {
		t.Errorf("proxy RSS %d MB with %d connections held before login (limit %d MB)", peak>>20, floodConns, rssLimit>>20)
	}
	for i, c := range conns {
		if err := c.closedByPeer(handshake + 15*time.Second); err != nil {
			t.Fatalf("silent connection %d: %v", i, err)
		}
		if d := time.Since(c.opened); d < handshake-time.Second {
			t.Fatalf("silent connection %d closed after %v, before handshake_timeout %v", i, d, handshake)
		}
	}
	t.Logf("wave 2: %d silent connections opened in %v, held until handshake_timeout %v and then closed by the proxy; proxy RSS peak %d MB (before: %d MB), queries served meanwhile",
		floodConns, opened.Round(time.Millisecond), handshake, peak>>20, base>>20)
	if v := queryString(t, db, "SELECT 'after'"); v != "after" {
		t.Errorf("after the flood: %s", v)
	}
}

// floodConn is one hostile client connection.
type floodConn struct {
	nc     net.Conn
	br     *bufio.Reader
	opened time.Time
}

// floodOpen opens n connections (16 at a time), reads each greeting and writes send;
// check runs after every 200 connections. Cleanup closes them.
func floodOpen(t *testing.T, addr string, n int, send []byte, check func(opened int)) []*floodConn {
	t.Helper()
	conns := make([]*floodConn, n)
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				_ = c.nc.Close()
			}
		}
	})
	for batch := 0; batch < n; batch += 200 {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		next := make(chan int)
		for range 16 {
			wg.Go(func() {
				for i := range next {
					c, err := floodDial(addr, send)
					if err != nil {
						errs <- err
						continue
					}
					conns[i] = c
				}
			})
		}
		for i := batch; i < min(batch+200, n); i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("opening flood connections: %v", err)
		}
		check(min(batch+200, n))
	}
	return conns
}

func floodDial(addr string, send []byte) (*floodConn, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := &floodConn{nc: nc, br: bufio.NewReaderSize(nc, 4096), opened: time.Now()}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	var hdr [4]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if _, err := c.br.Discard(int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if _, err := nc.Write(send); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

// errThenClose reads the ERR packet the proxy sends and then expects the connection to be
// closed; it returns the error code.
func (c *floodConn) errThenClose(timeout time.Duration) (uint16, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	var hdr [4]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return 0, fmt.Errorf("no ERR packet: %w", err)
	}
	p := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return 0, err
	}
	if len(p) < 3 || p[0] != 0xff {
		return 0, fmt.Errorf("not an ERR packet: % x", p)
	}
	code := uint16(p[1]) | uint16(p[2])<<8
	return code, c.closedByPeer(timeout)
}

// closedByPeer waits until the proxy closes the connection (EOF or reset).
func (c *floodConn) closedByPeer(timeout time.Duration) error {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	_, err := io.Copy(io.Discard, c.br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("still open after %v", timeout)
	}
	return nil
}

// vmRSS returns the resident set size of process pid, from /proc/<pid>/status.
func vmRSS(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// raiseFDLimit raises this process's soft limit on open files to at least n (within the
// hard limit); the proxy started afterwards inherits it.
func raiseFDLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Fatalf("open files: hard limit %d, this test needs %d", lim.Max, n)
	}
	old := lim.Cur
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		lim.Cur = old
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	})
}

// testScatterGroupsBound checks server.max_scatter_groups: a scatter GROUP BY sorted by an
// aggregate with LIMIT n holds only n groups (so it runs with more groups than the bound),
// group-ordered results stream, and a query that would hold more groups than the bound
// fails with 1038 instead of growing without limit.
func testScatterGroupsBound(t *testing.T, e *env) {
	cfg := e.config(t, dbMap{Logical: "grp", Physical: "grp_0"})
	e.rootExec(t, "CREATE DATABASE IF NOT EXISTS grp_1", "CREATE DATABASE IF NOT EXISTS grp_ref")
	cfg.Shards = append(cfg.Shards, shardConfig{Name: "s1", Primary: "b0", Database: "grp_1"})
	cfg.Schemes = []map[string]any{{"name": "h", "function": "hash", "shards": []string{"s0", "s1"}}}
	cfg.Databases[0].Tables = []map[string]any{{"name": "t", "kind": "sharded", "key": "k", "scheme": "h"}}
	cfg.Server["max_scatter_groups"] = 100
	var inserts [3][]string
	for k := 1; k <= 900; k++ {
		g := k % 150
		if k%3 == 0 {
			g = k % 40 // groups of different sizes
		}
		v := fmt.Sprintf("(%d, %d)", k, g)
		inserts[k%2] = append(inserts[k%2], v)
		inserts[2] = append(inserts[2], v)
	}
	for i, db := range []string{"grp_0", "grp_1", "grp_ref"} {
		e.rootExec(t, "DROP TABLE IF EXISTS "+db+".t", "CREATE TABLE "+db+".t (k BIGINT PRIMARY KEY, g INT NOT NULL)",
			"INSERT INTO "+db+".t VALUES "+strings.Join(inserts[i], ","))
	}
	ref := e.direct(t, "grp_ref")
	if n := queryString(t, ref, "SELECT COUNT(DISTINCT g) FROM t"); n != "114" {
		t.Fatalf("%s groups in the data, want 114: more than max_scatter_groups", n)
	}
	p := startProxy(t, cfg)
	for _, mode := range []string{"interpolateParams=true", "interpolateParams=false"} {
		db := p.open(t, appUser, appPass, "grp", mode)
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{"SELECT g, COUNT(*) AS n, SUM(k) FROM t GROUP BY g ORDER BY n DESC, g LIMIT 5", nil},
			{"SELECT g, COUNT(*) AS n, MAX(k) FROM t GROUP BY g ORDER BY n, MAX(k) DESC LIMIT 3 OFFSET 10", nil},
			{"SELECT g, COUNT(*) AS n FROM t GROUP BY g ORDER BY n DESC, g LIMIT ?", []any{7}},
			{"SELECT g, COUNT(*) FROM t GROUP BY g ORDER BY g", nil}, // 114 groups, streamed in group order
		} {
			want, err := tryQuery(ref, q.sql, q.args...)
			if err != nil {
				t.Fatalf("%s on the reference: %v", q.sql, err)
			}
			got, err := tryQuery(db, q.sql, q.args...)
			if err != nil {
				t.Errorf("%s (%s): %v", q.sql, mode, err)
			} else if diff := diffResults(want, got, true); diff != "" {
				t.Errorf("%s (%s): %s", q.sql, mode, diff)
			}
		}
		for _, q := range []string{
			"SELECT g, COUNT(*) AS n FROM t GROUP BY g ORDER BY n DESC, g",
			"SELECT g, COUNT(*) AS n FROM t GROUP BY g ORDER BY n DESC, g LIMIT 110",
			"SELECT g, COUNT(*) AS n FROM t GROUP BY g ORDER BY n DESC, g LIMIT 95, 10",
		} {
			_, err := tryQuery(db, q)
			wantError(t, err, 1038, "HY001")
		}
		if v := queryString(t, db, "SELECT COUNT(*) FROM t"); v != "900" {
			t.Errorf("after the refusals: COUNT(*) = %s", v)
		}
	}
}
