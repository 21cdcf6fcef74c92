package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// testDeadline checks statement deadlines and cancellation end to end (issue #5): a 200 ms
// budget from each source stops SLEEP(10) on MariaDB and answers 3024 at once, the client
// connection and an open transaction survive it, a client that disconnects leaves nothing
// running, KILL and SHOW PROCESSLIST work on proxy connection ids, and a deadline bounds
// the wait for an exhausted pool.
func testDeadline(t *testing.T, e *env) {
	m := dbMap{Logical: "dl", Physical: "dl_phys"}
	slow := dbMap{Logical: "dlslow", Physical: "dlslow_phys"}

	t.Run("Sources", func(t *testing.T) {
		cfg := e.config(t, m, slow)
		e.backendUser(t, cfg, "px_dl")
		cfg.Users = append(cfg.Users, userConfig{Name: "dlbudget", PasswordHash: e.nativeHash, MaxExecutionTime: "200ms"})
		cfg.Databases[1].MaxExecutionTime = "200ms"
		metricsAddr := freeAddr(t)
		p := startProxyArgs(t, cfg, "--metrics-addr", metricsAddr)

		cfgSrv := e.config(t, m)
		e.backendUser(t, cfgSrv, "px_dl")
		cfgSrv.Server["max_execution_time"] = "200ms"
		pSrv := startProxy(t, cfgSrv)

		for _, tc := range []struct {
			name, source string
			p            *proxy
			user, pass   string
			db           string
			setup        []string
			query        string
			args         []any
		}{
			{"Hint", "hint", p, appUser, appPass, m.Logical, nil, "SELECT /*+ MAX_EXECUTION_TIME(200) */ SLEEP(10)", nil},
			{"HintPrepared", "hint", p, appUser, appPass, m.Logical, nil, "SELECT /*+ MAX_EXECUTION_TIME(200) */ SLEEP(?)", []any{10}},
			{"SessionMaxExecutionTime", "session", p, appUser, appPass, m.Logical, []string{"SET SESSION max_execution_time = 200"}, "SELECT SLEEP(10)", nil},
			{"SessionMaxStatementTime", "session", p, appUser, appPass, m.Logical, []string{"SET max_statement_time = 0.2"}, "SELECT SLEEP(10)", nil},
			{"SessionPrepared", "session", p, appUser, appPass, m.Logical, []string{"SET @@session.max_execution_time = 200"}, "SELECT SLEEP(?)", []any{10}},
			{"User", "user", p, "dlbudget", nativePw2, m.Logical, nil, "SELECT SLEEP(10)", nil},
			{"Database", "database", p, nativeAll, nativePw2, slow.Logical, nil, "SELECT SLEEP(10)", nil},
			{"Server", "server", pSrv, appUser, appPass, m.Logical, nil, "SELECT SLEEP(10)", nil},
			// MariaDB's own per-statement limit, sent unparsed to an unsharded database: the
			// backend enforces it, and its 1969 reaches the client as 3024.
			{"SetStatement", "MariaDB", p, appUser, appPass, m.Logical, nil, "SET STATEMENT max_statement_time = 0.2 FOR SELECT SLEEP(10)", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				conn := dedicatedConn(t, tc.p.open(t, tc.user, tc.pass, tc.db))
				mustExec(t, conn, tc.setup...)
				start := time.Now()
				_, err := conn.ExecContext(context.Background(), tc.query, tc.args...)
				took := time.Since(start)
				wantError(t, err, 3024, "HY000")
				if took > time.Second {
					t.Errorf("3024 after %v, want well under a second for a 200ms budget", took)
				}
				t.Logf("%s: 200ms budget from %s: 3024 after %v", tc.name, tc.source, took.Round(time.Millisecond))
				wantNothingRunning(t, e, "px_dl", "%SLEEP(%", time.Second)
				if v := queryString(t, conn, "SELECT 'next'"); v != "next" {
					t.Errorf("the statement after the timeout: %q", v)
				}
			})
		}

		t.Run("ReadBack", func(t *testing.T) {
			conn := dedicatedConn(t, p.open(t, "dlbudget", nativePw2, m.Logical))
			// Before any SET, the variables show the configured default that applies.
			if v := queryString(t, conn, "SELECT @@max_execution_time"); v != "200" {
				t.Errorf("@@max_execution_time with a 200ms user default: %s", v)
			}
			mustExec(t, conn, "SET SESSION max_execution_time = 1500")
			got := query(t, conn, "SELECT @@max_execution_time, @@session.max_statement_time")
			if len(got.Rows) != 1 || text(got.Rows[0][0]) != "1500" || text(got.Rows[0][1]) != "1.500000" {
				t.Errorf("after SET max_execution_time = 1500: %v", got.Rows)
			}
			if got.Columns[0] != "@@max_execution_time" || got.Columns[1] != "@@session.max_statement_time" {
				t.Errorf("column names %q", got.Columns)
			}
			mustExec(t, conn, "SET max_statement_time = 0")
			if v := queryString(t, conn, "SELECT @@max_execution_time"); v != "0" {
				t.Errorf("after SET max_statement_time = 0 (no limit): %s", v)
			}
			if v := queryString(t, conn, "SELECT SLEEP(0.4) + 1"); v != "1" {
				t.Errorf("with no limit a 400ms statement completes: %s", v)
			}
			mustExec(t, conn, "SET max_execution_time = DEFAULT, time_zone = '+01:00'")
			if v := queryString(t, conn, "SELECT @@max_execution_time"); v != "200" {
				t.Errorf("after SET max_execution_time = DEFAULT: %s", v)
			}
			if v := queryString(t, conn, "SELECT @@time_zone"); v != "+01:00" {
				t.Errorf("a variable set next to max_execution_time: time_zone %q", v)
			}
			_, err := conn.ExecContext(context.Background(), "SET max_execution_time = 'soon'")
			wantError(t, err, 1231, "42000")
		})

		t.Run("Metrics", func(t *testing.T) {
			body := httpGet(t, "http://"+metricsAddr+"/metrics")
			for source, want := range map[string]int{"hint": 2, "session": 3, "user": 1, "database": 1} {
				if got := metricValue(t, body, "shardproxy_statement_timeouts_total", "source", source); got != want {
					t.Errorf("statement timeouts from %s: %d, want %d", source, got, want)
				}
			}
			if got := metricValue(t, body, "shardproxy_kills_total", "reason", "timeout"); got != 7 {
				t.Errorf("backend kills for timeouts: %d, want 7", got)
			}
		})
	})

	t.Run("InTransaction", func(t *testing.T) {
		cfg := e.config(t, m)
		e.backendUser(t, cfg, "px_dltx")
		p := startProxy(t, cfg)
		direct := e.direct(t, m.Physical)
		mustExec(t, direct, "CREATE TABLE IF NOT EXISTS dltx (id INT PRIMARY KEY) ENGINE=InnoDB", "DELETE FROM dltx")
		conn := dedicatedConn(t, p.open(t, appUser, appPass, m.Logical))
		mustExec(t, conn, "BEGIN", "INSERT INTO dltx VALUES (1)")
		_, err := conn.ExecContext(context.Background(), "SELECT /*+ MAX_EXECUTION_TIME(200) */ SLEEP(10)")
		wantError(t, err, 3024, "HY000")
		wantNothingRunning(t, e, "px_dltx", "%SLEEP(%", time.Second)
		// MariaDB rolls back the interrupted statement only: the transaction stays open, with
		// its earlier writes, and goes on.
		if v := queryString(t, conn, "SELECT @@in_transaction"); v != "1" {
			t.Errorf("@@in_transaction after the timeout: %s, want 1", v)
		}
		mustExec(t, conn, "INSERT INTO dltx VALUES (2)")
		if n := queryString(t, direct, "SELECT COUNT(*) FROM dltx"); n != "0" {
			t.Errorf("%s rows visible outside the transaction before COMMIT", n)
		}
		mustExec(t, conn, "COMMIT")
		if ids := queryString(t, direct, "SELECT GROUP_CONCAT(id ORDER BY id) FROM dltx"); ids != "1,2" {
			t.Errorf("after COMMIT: ids %s, want 1,2", ids)
		}
		// A statement that changes rows and times out is rolled back alone as well.
		mustExec(t, conn, "BEGIN", "INSERT INTO dltx VALUES (3)")
		_, err = conn.ExecContext(context.Background(), "UPDATE /*+ MAX_EXECUTION_TIME(200) */ dltx SET id = id + 10 WHERE SLEEP(10) = 0")
		wantError(t, err, 3024, "HY000")
		mustExec(t, conn, "ROLLBACK")
		if ids := queryString(t, direct, "SELECT GROUP_CONCAT(id ORDER BY id) FROM dltx"); ids != "1,2" {
			t.Errorf("after the timed-out UPDATE and ROLLBACK: ids %s, want 1,2", ids)
		}
	})

	t.Run("ClientDisconnect", func(t *testing.T) {
		cfg := e.config(t, m)
		e.backendUser(t, cfg, "px_dlgone")
		metricsAddr := freeAddr(t)
		p := startProxyArgs(t, cfg, "--metrics-addr", metricsAddr)
		db := p.open(t, appUser, appPass, m.Logical)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := db.ExecContext(ctx, "SELECT SLEEP(10)")
			errc <- err
		}()
		waitRunning(t, e, "px_dlgone", "SELECT SLEEP(10)%")
		cancel() // go-sql-driver closes its connection
		if err := <-errc; err == nil {
			t.Fatal("SLEEP(10) completed despite the cancellation")
		}
		start := time.Now()
		wantNothingRunning(t, e, "px_dlgone", "SELECT SLEEP(10)%", time.Second)
		t.Logf("backend processlist clean %v after the client went away", time.Since(start).Round(time.Millisecond))
		eventually(t, 5*time.Second, "a client_gone kill counted", func() error {
			if n := metricValue(t, httpGet(t, "http://"+metricsAddr+"/metrics"), "shardproxy_kills_total", "reason", "client_gone"); n != 1 {
				return fmt.Errorf("shardproxy_kills_total{reason=client_gone} = %d", n)
			}
			return nil
		})
	})

	t.Run("Kill", func(t *testing.T) {
		cfg := e.config(t, m)
		e.backendUser(t, cfg, "px_dlkill")
		cfg.Users = append(cfg.Users, userConfig{Name: "dladmin", PasswordHash: e.nativeHash, Admin: true})
		p := startProxy(t, cfg)
		victimDB := p.open(t, appUser, appPass, m.Logical)
		victim := dedicatedConn(t, victimDB)
		victimID := queryString(t, victim, "SELECT CONNECTION_ID()")
		killer := dedicatedConn(t, p.open(t, appUser, appPass, m.Logical))
		killerID := queryString(t, killer, "SELECT CONNECTION_ID()")

		// SHOW PROCESSLIST lists proxy connection ids, the ones CONNECTION_ID() returns.
		list := query(t, killer, "SHOW PROCESSLIST")
		if want := []string{"Id", "User", "Host", "db", "Command", "Time", "State", "Info"}; strings.Join(list.Columns, ",") != strings.Join(want, ",") {
			t.Errorf("SHOW PROCESSLIST columns %q, want %q", list.Columns, want)
		}
		ids := map[string][]any{}
		for _, r := range list.Rows {
			ids[text(r[0])] = r
		}
		if r, ok := ids[victimID]; !ok || text(r[1]) != appUser || text(r[3]) != m.Logical || text(r[4]) != "Sleep" {
			t.Errorf("SHOW PROCESSLIST row of connection %s: %v (all: %v)", victimID, r, list.Rows)
		}
		if r, ok := ids[killerID]; !ok || text(r[4]) != "Query" || text(r[7]) != "SHOW PROCESSLIST" {
			t.Errorf("SHOW PROCESSLIST row of its own connection %s: %v", killerID, r)
		}

		// KILL QUERY interrupts the statement with 1317; the connection goes on.
		errc := make(chan error, 1)
		go func() {
			_, err := victim.ExecContext(context.Background(), "SELECT SLEEP(10)")
			errc <- err
		}()
		waitRunning(t, e, "px_dlkill", "SELECT SLEEP(10)%")
		full := query(t, killer, "SHOW FULL PROCESSLIST")
		for _, r := range full.Rows {
			if text(r[0]) == victimID && (text(r[4]) != "Query" || text(r[7]) != "SELECT SLEEP(10)") {
				t.Errorf("SHOW FULL PROCESSLIST row of the sleeping connection: %v", r)
			}
		}
		start := time.Now()
		mustExec(t, killer, "KILL QUERY "+victimID)
		err := <-errc
		wantError(t, err, 1317, "70100")
		t.Logf("KILL QUERY: 1317 %v after the KILL", time.Since(start).Round(time.Millisecond))
		wantNothingRunning(t, e, "px_dlkill", "SELECT SLEEP(10)%", time.Second)
		if v := queryString(t, victim, "SELECT 'alive'"); v != "alive" {
			t.Errorf("the connection after KILL QUERY: %q", v)
		}

		// Another user's connection: 1095 unless admin; an unknown id: 1094.
		other := dedicatedConn(t, p.open(t, nativeAll, nativePw2, m.Logical))
		_, err = other.ExecContext(context.Background(), "KILL QUERY "+victimID)
		wantError(t, err, 1095, "HY000")
		_, err = other.ExecContext(context.Background(), "KILL "+victimID)
		wantError(t, err, 1095, "HY000")
		for _, r := range query(t, other, "SHOW PROCESSLIST").Rows {
			if text(r[1]) != nativeAll {
				t.Errorf("a user without admin sees another user's connection: %v", r)
			}
		}
		_, err = killer.ExecContext(context.Background(), "KILL 999999")
		wantError(t, err, 1094, "HY000")
		admin := dedicatedConn(t, p.open(t, "dladmin", nativePw2, m.Logical))
		seen := map[string]bool{}
		for _, r := range query(t, admin, "SHOW PROCESSLIST").Rows {
			seen[text(r[0])] = true
		}
		if !seen[victimID] || !seen[killerID] {
			t.Errorf("the admin's SHOW PROCESSLIST misses connections %s or %s: %v", victimID, killerID, seen)
		}
		otherID := queryString(t, other, "SELECT CONNECTION_ID()")
		mustExec(t, admin, "KILL QUERY "+otherID) // an idle connection: nothing to interrupt
		if v := queryString(t, other, "SELECT 'untouched'"); v != "untouched" {
			t.Errorf("after KILL QUERY of an idle connection: %q", v)
		}

		// KILL closes the connection.
		mustExec(t, killer, "KILL CONNECTION "+victimID)
		_, err = victim.ExecContext(context.Background(), "SELECT 1")
		if err == nil {
			t.Error("the killed connection still answers")
		}
		eventually(t, 5*time.Second, "the killed connection leaves the process list", func() error {
			for _, r := range query(t, killer, "SHOW PROCESSLIST").Rows {
				if text(r[0]) == victimID {
					return fmt.Errorf("connection %s still listed", victimID)
				}
			}
			return nil
		})
		// Killing one's own connection closes it too.
		_, err = killer.ExecContext(context.Background(), "KILL "+killerID)
		wantError(t, err, 1927, "70100")
		if _, err := killer.ExecContext(context.Background(), "SELECT 1"); err == nil {
			t.Error("a connection that killed itself still answers")
		}
	})

	t.Run("PoolExhausted", func(t *testing.T) {
		cfg := e.config(t, m)
		cfg.Backends[0].Pool = poolConfig{MaxOpen: 1, MaxIdle: 1, AcquireTimeout: "30s"}
		p := startProxy(t, cfg)
		holder := dedicatedConn(t, p.open(t, appUser, appPass, m.Logical))
		mustExec(t, holder, "BEGIN", "SELECT 1") // pins the pool's only connection
		waiter := dedicatedConn(t, p.open(t, appUser, appPass, m.Logical))
		mustExec(t, waiter, "SET max_execution_time = 200")
		start := time.Now()
		_, err := waiter.ExecContext(context.Background(), "SELECT 1")
		took := time.Since(start)
		wantError(t, err, 3024, "HY000")
		var me *mysql.MySQLError
		if errors.As(err, &me) && !strings.Contains(me.Message, "waiting for a connection to backend b0") {
			t.Errorf("the pool timeout does not say what it waited for: %q", me.Message)
		}
		if took > time.Second {
			t.Errorf("3024 after %v waiting for an exhausted pool, want well under a second", took)
		}
		t.Logf("exhausted pool: 3024 after %v", took.Round(time.Millisecond))
		mustExec(t, holder, "COMMIT")
		if v := queryString(t, waiter, "SELECT 'served'"); v != "served" {
			t.Errorf("after the pool freed up: %q", v)
		}
	})

	t.Run("ScatterGather", func(t *testing.T) {
		// Two shards of one logical database (two physical databases of the one MariaDB);
		// a statement without the shard key reads both. Each shard sleeps per row, one of
		// them far longer: at the deadline both are running, and both must be stopped.
		sg := dbMap{Logical: "dlsg", Physical: "dlsg_0"}
		cfg := e.config(t, sg)
		e.backendUser(t, cfg, "px_dlsg")
		e.rootExec(t, "CREATE DATABASE IF NOT EXISTS dlsg_1")
		cfg.Shards = append(cfg.Shards, shardConfig{Name: "s1", Primary: "b0", Database: "dlsg_1"})
		cfg.Schemes = []map[string]any{{"name": "by_id", "function": "mod", "slots": 2, "shards": []string{"s0", "s1"}}}
		cfg.Databases[0].Tables = []map[string]any{{"name": "sgt", "kind": "sharded", "key": "id", "scheme": "by_id"}}
		for i, phys := range []string{"dlsg_0", "dlsg_1"} {
			e.rootExec(t, "CREATE TABLE IF NOT EXISTS "+phys+".sgt (id INT PRIMARY KEY)", "DELETE FROM "+phys+".sgt",
				fmt.Sprintf("INSERT INTO %s.sgt VALUES (%d)", phys, i))
		}
		metricsAddr := freeAddr(t)
		p := startProxyArgs(t, cfg, "--metrics-addr", metricsAddr)
		conn := dedicatedConn(t, p.open(t, appUser, appPass, sg.Logical))
		if v := queryString(t, conn, "SELECT COUNT(*) FROM sgt"); v != "2" {
			t.Fatalf("the scatter query counts %s rows over both shards, want 2", v)
		}
		start := time.Now()
		_, err := conn.ExecContext(context.Background(), "SELECT /*+ MAX_EXECUTION_TIME(300) */ id, SLEEP(IF(id = 0, 10, 5)) FROM sgt ORDER BY id")
		took := time.Since(start)
		wantError(t, err, 3024, "HY000")
		if took > time.Second {
			t.Errorf("3024 after %v for a 300ms scatter budget", took)
		}
		t.Logf("scatter over 2 shards: 3024 after %v", took.Round(time.Millisecond))
		wantNothingRunning(t, e, "px_dlsg", "%SLEEP(%", time.Second)
		if n := metricValue(t, httpGet(t, "http://"+metricsAddr+"/metrics"), "shardproxy_kills_total", "reason", "timeout"); n != 2 {
			t.Errorf("backend kills for the timed-out scatter query: %d, want one per shard (2)", n)
		}
		if v := queryString(t, conn, "SELECT COUNT(*) FROM sgt"); v != "2" {
			t.Errorf("the scatter query after the timeout: %s", v)
		}
	})
}

// dedicatedConn returns one connection of db, closed by t.Cleanup, so that session state
// (variables, transactions, CONNECTION_ID()) stays put.
func dedicatedConn(t testing.TB, db *sql.DB) *sql.Conn {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// backendRunning counts statements of MariaDB user whose text matches the LIKE pattern.
func backendRunning(e *env, user, like string) (int, error) {
	var n int
	err := e.root.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ? AND INFO LIKE ?", user, like).Scan(&n)
	return n, err
}

// wantNothingRunning fails unless MariaDB runs no statement of user matching like within
// within.
func wantNothingRunning(t testing.TB, e *env, user, like string, within time.Duration) {
	t.Helper()
	eventually(t, within, "no "+like+" left running on MariaDB", func() error {
		n, err := backendRunning(e, user, like)
		if err == nil && n > 0 {
			err = fmt.Errorf("%d still running", n)
		}
		return err
	})
}

// waitRunning waits until MariaDB runs a statement of user matching like.
func waitRunning(t testing.TB, e *env, user, like string) {
	t.Helper()
	eventually(t, 10*time.Second, like+" running on MariaDB", func() error {
		n, err := backendRunning(e, user, like)
		if err == nil && n == 0 {
			err = errors.New("not yet")
		}
		return err
	})
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func httpGet(t testing.TB, url string) string {
	t.Helper()
	var body string
	eventually(t, 10*time.Second, "GET "+url, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		body = string(b)
		return err
	})
	return body
}

// metricValue reads counter name{label="value"} from a Prometheus text exposition.
func metricValue(t testing.TB, body, name, label, value string) int {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+`{`+label+`="`+value+`"}`) + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s{%s=%q} not in /metrics:\n%s", name, label, value, body)
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return int(f)
}
