package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// killedBackendUser is the proxy's MariaDB account in TestKilledBackendSessions: its
// sessions are the ones the test kills.
const killedBackendUser = "killsess"

// killedEnv is a proxy over one MariaDB whose backend sessions the test kills from the server
// side, and the clients that use it.
type killedEnv struct {
	e     *env
	proxy *proxy
	db    *sql.DB
	ids   atomic.Int64  // unique ids for INSERTs
	port  int           // the server's port as the proxy dials it
	lag   time.Duration // how long after a KILL's answer its close may reach the proxy
}

// TestKilledBackendSessions: backend sessions the server kills while they sit idle in the
// proxy's pool never carry a client's statement (the pool looks at every connection's
// socket before handing it out), and a kill that races statements fails only the statement
// whose own backend connection it killed.
func TestKilledBackendSessions(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(t, dbMap{"kdb", "kdb_0"})
	e.backendUser(t, cfg, killedBackendUser)
	cfg.Backends[0].Pool = poolConfig{MaxOpen: 32, MaxIdle: 32}
	port, lag := e.srv.Port, forwardingLag
	if addr := e.srv.BridgeAddr(t.Context()); addr != "" {
		// Without the port forwarding a kill's close reaches the proxy before the KILL's
		// answer reaches the test, so "killed while it ran" is exact.
		cfg.Backends[0].Addr, port, lag = addr, 3306, 0
	} else {
		t.Logf("the server's bridge address is not reachable: going through Docker's port forwarding, a close may reach the proxy up to %v after the KILL's answer", lag)
	}
	e.rootExec(t, "CREATE TABLE IF NOT EXISTS kdb_0.t (id BIGINT PRIMARY KEY, v INT)",
		"INSERT INTO kdb_0.t VALUES (1, 10)")
	p := startProxy(t, cfg)
	k := &killedEnv{e: e, proxy: p, db: p.open(t, appUser, appPass, "kdb"), port: port, lag: lag}
	k.db.SetMaxOpenConns(64)
	k.db.SetMaxIdleConns(64)
	t.Run("AllIdleKilled", k.testAllIdleKilled)
	t.Run("KillsRacingStatements", k.testKillsRacingStatements)
}

// testAllIdleKilled: every idle backend session of the proxy is killed on the server, then
// reads and writes run at once from several clients: all of them succeed.
func (k *killedEnv) testAllIdleKilled(t *testing.T) {
	const clients, rounds = 8, 20
	conns := make([]*sql.Conn, clients)
	for i := range conns {
		c, err := k.db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	run := func(when string) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, 2*clients)
		for _, c := range conns {
			wg.Go(func() {
				var v int
				if err := c.QueryRowContext(t.Context(), "SELECT v FROM t WHERE id = 1").Scan(&v); err != nil {
					errs <- fmt.Errorf("read: %w", err)
				}
				if _, err := c.ExecContext(t.Context(), "INSERT INTO t VALUES (?, 1)", 1000+k.ids.Add(1)); err != nil {
					errs <- fmt.Errorf("write: %w", err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("%s: %v", when, err)
		}
	}
	killed, slowest := 0, time.Duration(0)
	for round := range rounds {
		run(fmt.Sprintf("round %d, right after every backend session was killed", round))
		// List the backend sessions, use them all once more (nothing new is dialled), and
		// kill them the moment the statements are answered.
		ids := k.sessions(t)
		run(fmt.Sprintf("round %d, before the kills", round))
		if t.Failed() {
			return
		}
		took := k.killAll(t, ids)
		killed += len(ids)
		slowest = max(slowest, took)
	}
	t.Logf("%d backend sessions killed in %d rounds; the slowest round's closes reached the proxy %v after its first KILL", killed, rounds, slowest)
	if killed < rounds {
		t.Fatalf("only %d backend sessions were killed in %d rounds", killed, rounds)
	}
}

// killAll kills the backend sessions ids of the proxy on the server (none is running a
// statement), all at once, and waits until the proxy's end of each has seen the close (which
// crosses Docker's port forwarding after the server's). It returns how long after the first
// KILL the last close reached the proxy.
func (k *killedEnv) killAll(t *testing.T, ids []int64) time.Duration {
	t.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			if _, err := k.e.root.ExecContext(t.Context(), fmt.Sprintf("KILL %d", id)); err != nil {
				t.Errorf("KILL %d: %v", id, err)
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := k.allSessions(t)
		n, err := establishedTo(k.proxy.cmd.Process.Pid, k.port)
		if err != nil {
			t.Fatal(err)
		}
		// Every session left on the server is one the proxy still holds open, and no other.
		if n == len(left) && !slices.ContainsFunc(ids, func(id int64) bool { return slices.Contains(left, id) }) {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after killing %v: the server has sessions %v, the proxy %d open sockets to it", ids, left, n)
		}
		runtime.Gosched() // the close is a few hundred microseconds away: poll, do not sleep
	}
}

// sessions lists the proxy's sessions on the server that wait for a command (idle in the
// proxy's pool, or about to get a statement).
func (k *killedEnv) sessions(t *testing.T) []int64 {
	t.Helper()
	return k.listSessions(t, "AND command = 'Sleep'")
}

// allSessions lists all the proxy's sessions on the server.
func (k *killedEnv) allSessions(t *testing.T) []int64 {
	t.Helper()
	return k.listSessions(t, "")
}

func (k *killedEnv) listSessions(t *testing.T, cond string) []int64 {
	t.Helper()
	rows, err := k.e.root.QueryContext(t.Context(), "SELECT id FROM information_schema.processlist WHERE user = ? "+cond, killedBackendUser)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// establishedTo counts process pid's TCP sockets to remote port that are still ESTABLISHED
// (the peer has not closed them; once it has they are in CLOSE_WAIT).
func establishedTo(pid, port int) (int, error) {
	fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	if err != nil {
		return 0, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, f := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 || !inodes[fields[9]] {
				continue
			}
			_, rport, _ := strings.Cut(fields[2], ":")
			if p, err := strconv.ParseUint(rport, 16, 16); err == nil && int(p) == port && fields[3] == "01" {
				n++
			}
		}
	}
	return n, nil
}

// killRecord is one KILL of a backend session: issued at start, answered at end.
type killRecord struct{ start, end time.Time }

// testKillsRacingStatements: clients run reads and writes while a loop kills a random idle
// backend session of the proxy every few milliseconds (idle connections are reused within
// microseconds here, so many kills race a statement about to use the connection). A statement may fail only if a backend
// connection it used was killed while it ran: a read with 1430 naming that connection (its
// retry met a kill too), a write by its client connection closing (2013; the proxy's log
// names the backend connection it lost). Everything else must succeed.
func (k *killedEnv) testKillsRacingStatements(t *testing.T) {
	const clients = 16
	d := 5 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var mu sync.Mutex
	kills := map[int64]killRecord{}
	var killer sync.WaitGroup
	killer.Go(func() {
		rng := rand.New(rand.NewPCG(3, 4))
		for ctx.Err() == nil {
			ids := k.sessions(t)
			if len(ids) == 0 {
				continue
			}
			id := ids[rng.IntN(len(ids))]
			start := time.Now()
			_, err := k.e.root.ExecContext(t.Context(), fmt.Sprintf("KILL %d", id))
			mu.Lock()
			if _, again := kills[id]; err == nil && !again { // a killed session lingers a moment in the processlist
				kills[id] = killRecord{start, time.Now()}
			}
			mu.Unlock()
		}
	})
	type failure struct {
		what       string
		proxyConn  int64
		start, end time.Time
		err        error
	}
	var fmu sync.Mutex
	var failures []failure
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				c, err := k.db.Conn(ctx)
				if err != nil {
					return
				}
				var proxyConn int64
				began := time.Now()
				if err := c.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&proxyConn); err != nil {
					if ctx.Err() == nil { // a read like the others (the proxy asks a backend)
						fmu.Lock()
						failures = append(failures, failure{"SELECT CONNECTION_ID()", 0, began, time.Now(), err})
						fmu.Unlock()
					}
					_ = c.Close()
					continue
				}
				for ctx.Err() == nil {
					start := time.Now()
					what := "read"
					if rand.IntN(2) == 0 {
						var v int
						err = c.QueryRowContext(ctx, "SELECT v FROM t WHERE id = 1").Scan(&v)
					} else {
						what = "write"
						_, err = c.ExecContext(ctx, "INSERT INTO t VALUES (?, 1)", 1_000_000+k.ids.Add(1))
					}
					if err == nil {
						ok.Add(1)
						continue
					}
					if ctx.Err() != nil {
						break
					}
					fmu.Lock()
					failures = append(failures, failure{what, proxyConn, start, time.Now(), err})
					fmu.Unlock()
					break // the client connection may be gone: take another
				}
				_ = c.Close()
			}
		})
	}
	wg.Wait()
	killer.Wait()
	logs := k.proxy.log.String()
	for _, f := range failures {
		id, how := k.lostBackendConn(f.err, f.proxyConn, logs)
		kr, killedIt := kills[id]
		// The kill must have been issued before the statement ended and answered after it
		// began (plus, through Docker's port forwarding, the time the close takes to cross it).
		if id == 0 || !killedIt || kr.start.After(f.end) || kr.end.Add(k.lag).Before(f.start) {
			t.Errorf("%s on proxy connection %d failed without a kill of its own backend connection while it ran (%s, backend connection %d, killed %v: KILL sent %v and answered %v after the statement began, which took %v): %v",
				f.what, f.proxyConn, how, id, killedIt, kr.start.Sub(f.start), kr.end.Sub(f.start), f.end.Sub(f.start), f.err)
		}
	}
	t.Logf("%d statements succeeded, %d failed on a backend connection killed under them; %d backend sessions killed",
		ok.Load(), len(failures), len(kills))
	if len(kills) < 20 || ok.Load() < 100 {
		t.Fatalf("too little happened: %d kills, %d statements", len(kills), ok.Load())
	}
}

// forwardingLag bounds how long after MariaDB answers a KILL the proxy may still hand out
// the killed connection: the server's close reaches the proxy's socket through Docker's
// userland port forwarding, a copy loop in another process, after the KILL's answer (on a
// loaded machine, occasionally about 100 ms later).
const forwardingLag = 250 * time.Millisecond

var (
	backendConnNumRE = regexp.MustCompile(`backend connection (\d+)`)
	closingLineRE    = regexp.MustCompile(`closing the client connection: backend connection lost.*`)
)

// lostBackendConn finds the backend connection a failed statement lost: named by the 1430's
// message, or, when the client connection was closed (outcome unknown), by the proxy's log
// line for that client connection. It returns 0 when neither names one.
func (k *killedEnv) lostBackendConn(err error, proxyConn int64, logs string) (int64, string) {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		if me.Number != 1430 {
			return 0, fmt.Sprintf("error %d", me.Number)
		}
		if m := backendConnNumRE.FindStringSubmatch(me.Message); m != nil {
			id, _ := strconv.ParseInt(m[1], 10, 64)
			return id, "1430"
		}
		return 0, "1430 naming no backend connection"
	}
	for _, line := range closingLineRE.FindAllString(logs, -1) {
		if !strings.Contains(line, fmt.Sprintf("conn_id=%d ", proxyConn)) {
			continue
		}
		if m := backendConnNumRE.FindStringSubmatch(line); m != nil {
			id, _ := strconv.ParseInt(m[1], 10, 64)
			return id, "client connection closed"
		}
	}
	return 0, "client connection closed, no log line naming the backend connection"
}
