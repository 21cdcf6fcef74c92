package integration

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/shardproxy/shardproxy/rules"
)

// soakOp is one kind of client statement of the soak.
type soakOp int

const (
	opPointRead soakOp = iota // SELECT by shard key and id, checked against the preloaded row
	opWrite                   // INSERT of a unique id, recorded once acknowledged
	opScatter                 // aggregate or ORDER BY ... LIMIT over all shards
	opPrepared                // a statement prepared once per connection, executed again and again
	opDeadline                // MAX_EXECUTION_TIME(50) on SLEEP(1): must end in 3024
	opKilled                  // SLEEP(2) that another connection KILL QUERYs: 1317
	soakOps
)

var soakOpNames = [soakOps]string{"point read", "write", "scatter", "prepared", "deadline", "killed"}

// chaosWindow is a time range in which one shard's (or every shard's, shard < 0) backend
// connections were being killed or its server was down.
type chaosWindow struct {
	shard      int
	start, end time.Time
}

// soakLoad is the client side of the soak: workers, what they saw, and the chaos they ran in.
type soakLoad struct {
	se      *soakEnv
	clients int
	db      *sql.DB // the workers' connections (one each)
	admin   *sql.DB // connections that send KILL QUERY

	ok       [soakOps]atomic.Int64
	expected sync.Map // class → *atomic.Int64

	mu           sync.Mutex
	chaos        []chaosWindow
	acked        map[int64]int64               // acknowledged write id → user id
	killedIDs    map[backendSession]killWindow // sessions killed, or on the restarted server
	unexpected   map[string]int                // by operation, shard and message
	unexpExample map[string]string
	unexpCount   int
	backendKills int
	restart      time.Duration
	restartWin   *chaosWindow // the restart's, once begun
}

func newSoakLoad(t *testing.T, se *soakEnv, clients int) *soakLoad {
	l := &soakLoad{se: se, clients: clients, acked: map[int64]int64{}, killedIDs: map[backendSession]killWindow{}, unexpected: map[string]int{}, unexpExample: map[string]string{}}
	l.db = se.proxy.open(t, appUser, appPass, "shop", "timeout=30s")
	l.db.SetMaxOpenConns(clients)
	l.db.SetMaxIdleConns(clients)
	l.admin = se.proxy.open(t, appUser, appPass, "shop", "timeout=30s")
	l.admin.SetMaxOpenConns(16)
	return l
}

// run starts the workers and the chaos, and returns when both have stopped and every
// client connection is closed.
func (l *soakLoad) run(t *testing.T, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for w := range l.clients {
		wg.Go(func() { l.worker(ctx, w) })
	}
	var chaos sync.WaitGroup
	chaos.Go(func() { l.killBackends(ctx) })
	chaos.Go(func() { l.restartOne(ctx, t, d/3) })
	wg.Wait()
	chaos.Wait()
	_ = l.db.Close()
	_ = l.admin.Close()
}

// worker holds one client connection and runs random statements on it until ctx is done;
// a connection the proxy closed is replaced.
func (l *soakLoad) worker(ctx context.Context, w int) {
	rng := rand.New(rand.NewPCG(uint64(w), 42))
	var seq int64
	for ctx.Err() == nil {
		conn, err := l.db.Conn(ctx)
		if err != nil {
			if ctx.Err() == nil {
				l.classify(opPointRead, -1, 0, time.Now(), err)
			}
			continue
		}
		var connID int64
		if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&connID); err != nil {
			_ = conn.Close()
			if ctx.Err() == nil {
				l.classify(opPointRead, -1, 0, time.Now(), err)
			}
			continue
		}
		var stmt *sql.Stmt
		for ctx.Err() == nil {
			op := pickOp(rng)
			user := rng.Int64N(soakPreloadUsers) + 1
			start := time.Now()
			var err error
			switch op {
			case opWrite:
				seq++
				err = l.write(ctx, conn, int64(w+1)*10_000_000+seq, user)
			case opPrepared:
				if stmt == nil {
					stmt, err = conn.PrepareContext(ctx, "SELECT amount FROM orders WHERE user_id = ? AND id = ?")
				}
				if err == nil {
					err = pointRead(ctx, stmt, user, rng)
				}
			default:
				err = l.exec(ctx, op, conn, connID, user, rng)
			}
			if err == nil {
				l.ok[op].Add(1)
				continue
			}
			if ctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
				break
			}
			if l.classify(op, l.shardOf(op, user), connID, start, err) {
				break // the connection is gone: take another
			}
		}
		if stmt != nil {
			_ = stmt.Close()
		}
		_ = conn.Close()
	}
}

// pickOp draws an operation: mostly point reads and writes.
func pickOp(rng *rand.Rand) soakOp {
	switch r := rng.IntN(100); {
	case r < 35:
		return opPointRead
	case r < 60:
		return opWrite
	case r < 72:
		return opScatter
	case r < 90:
		return opPrepared
	case r < 96:
		return opDeadline
	default:
		return opKilled
	}
}

// shardOf is the shard a statement of op for user goes to; -1 for every shard.
func (l *soakLoad) shardOf(op soakOp, user int64) int {
	if op == opScatter {
		return -1
	}
	return userShardOf(user)
}

// userShardOf is the shard of a user's rows by the reference hash (the proxy's rules).
func userShardOf(user int64) int {
	slot, err := rules.HashFunc{N: 4}.Slot(rules.IntValue(user))
	if err != nil {
		panic(err) // an integer always hashes
	}
	return slot
}

// pointRead reads a preloaded row of user and checks its amount.
func pointRead(ctx context.Context, st *sql.Stmt, user int64, rng *rand.Rand) error {
	id := user*100 + rng.Int64N(soakPreloadPerUser)
	var amount int64
	if err := st.QueryRowContext(ctx, user, id).Scan(&amount); err != nil {
		return err
	}
	if amount != id%1000 {
		return fmt.Errorf("soak: row %d has amount %d, want %d", id, amount, id%1000)
	}
	return nil
}

func (l *soakLoad) write(ctx context.Context, conn *sql.Conn, id, user int64) error {
	_, err := conn.ExecContext(ctx, "INSERT INTO orders (id, user_id, amount, note) VALUES (?, ?, ?, 'soak')", id, user, id%1000)
	if err == nil {
		l.mu.Lock()
		l.acked[id] = user
		l.mu.Unlock()
	}
	return err
}

func (l *soakLoad) exec(ctx context.Context, op soakOp, conn *sql.Conn, connID, user int64, rng *rand.Rand) error {
	id := user*100 + rng.Int64N(soakPreloadPerUser)
	switch op {
	case opPointRead:
		var amount int64
		// Text protocol: the values are in the statement.
		q := fmt.Sprintf("SELECT amount FROM orders WHERE user_id = %d AND id = %d", user, id)
		if err := conn.QueryRowContext(ctx, q).Scan(&amount); err != nil {
			return err
		}
		if amount != id%1000 {
			return fmt.Errorf("soak: row %d has amount %d, want %d", id, amount, id%1000)
		}
		return nil
	case opScatter:
		if rng.IntN(2) == 0 {
			var n int64
			var sum sql.NullInt64
			return conn.QueryRowContext(ctx, "SELECT COUNT(*), SUM(amount) FROM orders WHERE note = 'preload' AND amount < 500").Scan(&n, &sum)
		}
		var got []int64
		rows, err := conn.QueryContext(ctx, "SELECT id FROM orders WHERE note = 'preload' ORDER BY id DESC LIMIT 3")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v int64
			if err := rows.Scan(&v); err != nil {
				return err
			}
			got = append(got, v)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		top := int64(soakPreloadUsers*100 + soakPreloadPerUser - 1)
		if !slices.Equal(got, []int64{top, top - 1, top - 2}) {
			return fmt.Errorf("soak: top preloaded ids %v, want %d, %d, %d", got, top, top-1, top-2)
		}
		return nil
	case opDeadline:
		var v int64
		err := conn.QueryRowContext(ctx, "SELECT /*+ MAX_EXECUTION_TIME(50) */ SLEEP(1) FROM orders WHERE user_id = ? AND id = ?", user, id).Scan(&v)
		if err == nil {
			return errors.New("soak: SLEEP(1) under MAX_EXECUTION_TIME(50) succeeded")
		}
		return err
	case opKilled:
		return l.killed(ctx, conn, connID, user, id)
	}
	return fmt.Errorf("soak: no operation %d", op)
}

// killed runs SLEEP(2) on conn while an admin connection sends KILL QUERY for it until
// it returns: the statement must end in 1317 (or, if SLEEP noticed the kill itself, with 1).
func (l *soakLoad) killed(ctx context.Context, conn *sql.Conn, connID, user, id int64) error {
	done := make(chan struct{})
	var killer sync.WaitGroup
	killer.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				_, _ = l.admin.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", connID))
			}
		}
	})
	var v int64
	err := conn.QueryRowContext(ctx, "SELECT SLEEP(2) FROM orders WHERE user_id = ? AND id = ?", user, id).Scan(&v)
	close(done)
	killer.Wait()
	if err == nil && v != 1 {
		return errors.New("soak: SLEEP(2) was not interrupted by KILL QUERY")
	}
	return err
}

// classify sorts a failed statement: an expected error is counted by class; anything else
// is recorded as unexpected. It reports whether the client connection is gone. connID is the
// client connection's id on the proxy (0: unknown).
func (l *soakLoad) classify(op soakOp, shard int, connID int64, start time.Time, err error) (connGone bool) {
	end := time.Now()
	code := uint16(0)
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		code = me.Number
	}
	lost := code == 0 && isConnLost(err)
	class := ""
	switch {
	case op == opDeadline && code == 3024:
		class = "3024 deadline (MAX_EXECUTION_TIME)"
	case op == opKilled && code == 1317:
		class = "1317 KILL QUERY"
	case lost && connID > 0 && l.lostOnKilledConn(connID, start, end):
		class = "connection closed by the proxy (its backend connection killed while it ran)"
	case lost && l.inRestart(-1, start, end):
		class = "connection closed by the proxy while a server restarted"
	case lost:
		// Only the loss of the statement's own backend connection explains it.
	case code == 1430 && l.onKilledConn(err, start, end):
		class = "1430 on a backend connection killed or restarted while it ran"
	case code == 1430 && l.inRestart(-1, start, end):
		class = "1430 while its server restarted" // a session dialled after the restart's listing
	case code == 1430:
		// Only a kill of the statement's own connection while it ran explains a 1430.
	case (isChaosCode(code) || (code == 1105 && strings.Contains(me.Message, "connect"))) && l.inChaos(shard, start, end):
		class = fmt.Sprintf("%d backend killed or restarted", code)
	}
	if class == "" {
		msg := err.Error()
		if len(msg) > 160 {
			msg = msg[:160]
		}
		key := fmt.Sprintf("%s on shard %d: %s", soakOpNames[op], shard, msg)
		l.mu.Lock()
		l.unexpCount++
		if l.unexpected[key] == 0 {
			l.unexpExample[key] = fmt.Sprintf("%s on shard %d: %v after %v%s", soakOpNames[op], shard, err, end.Sub(start).Round(time.Millisecond), l.killsOfLocked(err, start))
		}
		l.unexpected[key]++
		l.mu.Unlock()
	} else {
		c, _ := l.expected.LoadOrStore(class, new(atomic.Int64))
		c.(*atomic.Int64).Add(1)
	}
	return lost || code == 1927 || code == 1430 || code == 2013 || code == 2006
}

func isConnLost(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "broken pipe") || strings.Contains(s, "bad connection")
}

// isChaosCode: what a statement may get when its backend connection is killed or its server
// restarts — interrupted (1317), killed (1927), the proxy's "can't connect to backend"
// (1429) and "lost connection to the backend during the statement" (1430), network errors
// (1158-1161; 1105 naming the connection failure), server shutdown (1053), pool exhausted
// while a server is down (1040). Client-range codes (2003, 2013, ...) in an ERR packet are
// never expected: libmariadb reads them as a malformed packet.
func isChaosCode(code uint16) bool {
	switch code {
	case 1317, 1927, 1429, 1430, 1053, 1040, 1158, 1159, 1160, 1161:
		return true
	}
	return false
}

// inChaos reports whether a statement on shard (-1: every shard) that ran from start to
// end overlapped a kill of one of its backend connections or the restart of its server.
func (l *soakLoad) inChaos(shard int, start, end time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.chaos {
		if (shard < 0 || w.shard < 0 || w.shard == shard) && !w.end.Before(start) && !w.start.After(end) {
			return true
		}
	}
	return false
}

var backendConnRE = regexp.MustCompile(`backend connection (\d+)`)

// inRestart reports whether a statement on shard (-1: every shard) that ran from start to end
// overlapped the restart of its server.
func (l *soakLoad) inRestart(shard int, start, end time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.restartWin
	return w != nil && (shard < 0 || shard == w.shard) && !w.end.Before(start) && !w.start.After(end)
}

// backendSession is a thread id on server (= shard) server: ids are per server.
type backendSession struct {
	server int
	id     int64
}

// killWindow is when a backend connection died: from the KILL's sending (or the server's
// restart) to its answer (the restart's end), plus soakCloseLag.
type killWindow struct{ from, to time.Time }

// soakCloseLag: how long after MariaDB answers a KILL the close may reach the proxy's socket,
// through Docker's userland port forwarding on a loaded machine (the pool looks at the
// socket before handing a connection out, so it never hands out one whose close arrived).
const soakCloseLag = 250 * time.Millisecond

// onKilledConn reports whether err names a backend connection that was killed, or whose
// server restarted, while the statement ran from start to end: never one killed before (the
// pool discards those) nor one no one killed. The server is not checked: a statement may use
// another shard's server than its rows' (a prepare asks the default shard).
func (l *soakLoad) onKilledConn(err error, start, end time.Time) bool {
	m := backendConnRE.FindStringSubmatch(err.Error())
	if m == nil {
		return false
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	return l.killedWhile(id, start, end)
}

func (l *soakLoad) killedWhile(id int64, start, end time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range l.se.shards {
		w, ok := l.killedIDs[backendSession{s, id}]
		if ok && !w.from.After(end) && !w.to.Before(start) {
			return true
		}
	}
	return false
}

// lostOnKilledConn reports whether the proxy closed client connection connID (outcome
// unknown) because it lost a backend connection that was killed while the statement ran:
// the proxy logs the one it lost. The line may reach the log a moment after the client saw
// the close: wait for it (a second at most).
func (l *soakLoad) lostOnKilledConn(connID int64, start, end time.Time) bool {
	mark := fmt.Sprintf("conn_id=%d ", connID)
	for deadline := time.Now().Add(time.Second); ; {
		for _, line := range strings.Split(grepLines(l.se.proxy.log.String(), "closing the client connection"), "\n") {
			if !strings.Contains(line, mark) {
				continue
			}
			m := backendConnRE.FindStringSubmatch(line)
			return m != nil && l.killedWhile(must(strconv.ParseInt(m[1], 10, 64)), start, end)
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond) // the proxy's stderr is copied by another goroutine: nothing to wait on
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// killsOfLocked describes the kills of the backend connection err names, relative to start.
// Called with l.mu held.
func (l *soakLoad) killsOfLocked(err error, start time.Time) string {
	m := backendConnRE.FindStringSubmatch(err.Error())
	if m == nil {
		return ""
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	var b strings.Builder
	for s := range l.se.shards {
		if w, ok := l.killedIDs[backendSession{s, id}]; ok {
			fmt.Fprintf(&b, "; session %d on b%d killed from %v to %v after the statement began", id, s,
				w.from.Sub(start).Round(time.Millisecond), w.to.Sub(start).Round(time.Millisecond))
		}
	}
	return b.String()
}

// proxySessions lists the proxy's sessions on server s.
func (l *soakLoad) proxySessions(ctx context.Context, s int) ([]int64, error) {
	rows, err := l.se.shards[s].QueryContext(ctx, "SELECT id FROM information_schema.processlist WHERE user = ?", soakBackendUser)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func (l *soakLoad) addChaos(w chaosWindow) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.chaos = append(l.chaos, w)
}

// killBackends kills one of the proxy's backend sessions on a random server every 250 ms,
// from the server side (KILL <id> as root), until ctx is done.
func (l *soakLoad) killBackends(ctx context.Context) {
	rng := rand.New(rand.NewPCG(7, 7))
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s := rng.IntN(len(l.se.shards))
		ids, err := l.proxySessions(ctx, s)
		if err != nil || len(ids) == 0 {
			continue // the server is restarting, or the proxy has no session there
		}
		victim := ids[rng.IntN(len(ids))]
		start := time.Now()
		l.mu.Lock()
		sess := backendSession{s, victim}
		w, seen := l.killedIDs[sess]
		again := seen && time.Since(w.from) < 2*time.Second // a killed session lingers a moment in the processlist (ids restart with the server)
		if !again {
			l.killedIDs[sess] = killWindow{start, start.Add(time.Hour)} // until the KILL is answered
		}
		l.mu.Unlock()
		_, err = l.se.shards[s].ExecContext(ctx, fmt.Sprintf("KILL %d", victim))
		if !again {
			l.mu.Lock()
			l.killedIDs[sess] = killWindow{start, time.Now().Add(soakCloseLag)}
			l.mu.Unlock()
		}
		if err == nil {
			l.addChaos(chaosWindow{shard: s, start: start, end: time.Now().Add(200 * time.Millisecond)})
			l.mu.Lock()
			l.backendKills++
			l.mu.Unlock()
		}
	}
}

// restartOne restarts the last server after delay (stop, start on the same port, wait for
// logins), while the load goes on.
func (l *soakLoad) restartOne(ctx context.Context, t *testing.T, delay time.Duration) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(delay):
	}
	s := len(l.se.servers) - 1
	start := time.Now()
	ids, err := l.proxySessions(ctx, s) // the restart ends them all
	if err == nil {
		l.mu.Lock()
		for _, id := range ids {
			l.killedIDs[backendSession{s, id}] = killWindow{start, start.Add(time.Hour)} // until the server is back
		}
		l.mu.Unlock()
	}
	l.addChaos(chaosWindow{shard: s, start: start, end: start.Add(time.Hour)}) // open until the server is back
	l.mu.Lock()
	l.restartWin = &chaosWindow{shard: s, start: start, end: start.Add(time.Hour)}
	l.mu.Unlock()
	rctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := l.se.servers[s].Restart(rctx); err != nil {
		t.Errorf("restarting server b%d: %v", s, err)
		return
	}
	end := time.Now()
	l.mu.Lock()
	l.chaos[slices.IndexFunc(l.chaos, func(w chaosWindow) bool { return w.start.Equal(start) && w.shard == s })].end = end.Add(2 * time.Second)
	l.restart = end.Sub(start)
	l.restartWin.end = end.Add(soakCloseLag)
	for _, id := range ids {
		l.killedIDs[backendSession{s, id}] = killWindow{start, end.Add(soakCloseLag)}
	}
	l.mu.Unlock()
}

// report logs the figures of the run: QPS by operation, errors by class, resources.
func (l *soakLoad) report(t *testing.T, d time.Duration, before, peak, after soakSample) {
	var total int64
	var b strings.Builder
	for op := range soakOps {
		n := l.ok[op].Load()
		total += n
		fmt.Fprintf(&b, "  %-10s %8d ok\n", soakOpNames[op], n)
	}
	var classes []string
	l.expected.Range(func(k, v any) bool {
		classes = append(classes, fmt.Sprintf("  %-62s %6d", k, v.(*atomic.Int64).Load()))
		return true
	})
	sort.Strings(classes)
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("soak: %d clients for %v: %d statements ok (%.0f/s), %d acknowledged writes, %d backend sessions killed, "+
		"server b3 restarted in %v\n%s expected errors:\n%s\n unexpected errors: %d\n resources: before %s; peak %s; after %s",
		l.clients, d, total, float64(total)/d.Seconds(), len(l.acked), l.backendKills, l.restart.Round(100*time.Millisecond),
		b.String(), strings.Join(classes, "\n"), l.unexpCount, before, peak, after)
}

func (l *soakLoad) checkErrors(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.unexpCount > 0 {
		keys := slices.Collect(maps.Keys(l.unexpected))
		slices.SortFunc(keys, func(a, b string) int { return l.unexpected[b] - l.unexpected[a] })
		var b strings.Builder
		for i, k := range keys {
			if i == 40 {
				fmt.Fprintf(&b, "  ... and %d kinds more\n", len(keys)-i)
				break
			}
			fmt.Fprintf(&b, "  %6d × %s\n", l.unexpected[k], l.unexpExample[k])
		}
		t.Errorf("%d unexpected errors, by kind:\n%s\nthe proxy's connection closings (outcome unknown):\n%s", l.unexpCount, b.String(),
			tail(grepLines(l.se.proxy.log.String(), "closing the client connection"), 8<<10))
	}
	if l.restart == 0 {
		t.Errorf("the server was never restarted (the load ended first?)")
	}
	for op := range soakOps {
		if l.ok[op].Load() == 0 && op != opKilled && op != opDeadline {
			t.Errorf("no %s succeeded", soakOpNames[op])
		}
	}
}

// checkWrites reads every shard directly: each acknowledged write must be on its user's
// shard, and no write may be on another shard.
func (l *soakLoad) checkWrites(t *testing.T, se *soakEnv) {
	found := map[int64]int{}
	for s, db := range se.shards {
		rows, err := db.QueryContext(t.Context(), "SELECT id, user_id FROM orders WHERE note = 'soak'")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, user int64
			if err := rows.Scan(&id, &user); err != nil {
				t.Fatal(err)
			}
			if want := userShardOf(user); want != s {
				t.Errorf("write %d of user %d is on shard %d, want %d", id, user, s, want)
			}
			found[id] = s
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		_ = rows.Close()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	missing := 0
	for id, user := range l.acked {
		if _, ok := found[id]; !ok {
			missing++
			if missing <= 10 {
				t.Errorf("acknowledged write %d (user %d) is on no shard", id, user)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged writes are missing", missing, len(l.acked))
	}
	t.Logf("writes: %d acknowledged, all present; %d rows written in all (the rest unacknowledged)", len(l.acked), len(found))
}
