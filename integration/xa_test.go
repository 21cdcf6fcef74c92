package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// usersOnShards returns n user ids from base on, spread so that every shard gets some, in
// an order that starts on shard first.
func usersOnShards(t *testing.T, base int64, n int) []int64 {
	t.Helper()
	var out []int64
	for u := base; len(out) < n; u++ {
		out = append(out, u)
	}
	seen := map[int]bool{}
	for _, u := range out {
		seen[userShard(t, u)] = true
	}
	if len(seen) < 2 {
		t.Fatalf("users %v all land on one shard", out)
	}
	return out
}

// multiRowInsert builds "INSERT ... VALUES (?, ?, ?), ..." for orders of users, with its
// arguments: order id u*10, total u.
func multiRowInsert(prefix string, users []int64, suffix string) (string, []any) {
	var rows []string
	var args []any
	for _, u := range users {
		rows = append(rows, "(?, ?, ?)")
		args = append(args, u*10, u, fmt.Sprint(u))
	}
	return prefix + " INTO orders (order_id, user_id, total) VALUES " + strings.Join(rows, ", ") + suffix, args
}

// checkOrders asserts that each user's order is on the shard the rules name and on no other.
func checkOrders(t *testing.T, se *shardedEnv, users []int64, want bool) {
	t.Helper()
	for _, u := range users {
		home := userShard(t, u)
		for i, sh := range se.shards {
			n := queryString(t, sh, "SELECT COUNT(*) FROM orders WHERE user_id = ? AND order_id = ?", u, u*10)
			if expect := want && i == home; (n == "1") != expect {
				t.Errorf("user %d: shard %d holds %s rows (rules: shard %d, committed: %v)", u, i, n, home, want)
			}
		}
	}
}

// xaPending returns the proxy's prepared XA branches on each shard's server.
func xaPending(t *testing.T, se *shardedEnv) [4][]string {
	t.Helper()
	var out [4][]string
	for i, sh := range se.shards {
		r := query(t, sh, "XA RECOVER")
		for _, row := range r.Rows {
			if d := text(row[3]); strings.HasPrefix(d, "shardproxy:") {
				out[i] = append(out[i], d)
			}
		}
	}
	return out
}

func noPending(t *testing.T, se *shardedEnv) {
	t.Helper()
	if p := xaPending(t, se); fmt.Sprint(p) != "[[] [] [] []]" {
		t.Errorf("prepared XA branches left behind: %v", p)
	}
}

// testMultiShardWrites: multi-row INSERTs split over shards and broadcast writes, committed
// atomically, through go-sql-driver with and without server-side prepared statements.
func testMultiShardWrites(t *testing.T, se *shardedEnv) {
	for i, params := range []string{"interpolateParams=false", "interpolateParams=true"} {
		t.Run("SplitInsert/"+params, func(t *testing.T) {
			db := se.proxy.open(t, appUser, appPass, "shop", params)
			conn, err := db.Conn(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			users := usersOnShards(t, int64(7000+1000*i), 12)
			q, args := multiRowInsert("INSERT", users, "")
			res, err := conn.ExecContext(t.Context(), q, args...)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != 12 {
				t.Errorf("affected rows %d, want 12", n)
			}
			if rc := queryString(t, conn, "SELECT ROW_COUNT()"); rc != "12" {
				t.Errorf("ROW_COUNT() = %s, want 12", rc)
			}
			checkOrders(t, se, users, true)

			// ON DUPLICATE KEY UPDATE: 2 per updated row, summed over shards.
			q, args = multiRowInsert("INSERT", users, " ON DUPLICATE KEY UPDATE total = total + 1")
			res, err = conn.ExecContext(t.Context(), q, args...)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != 24 {
				t.Errorf("ON DUPLICATE KEY UPDATE: affected rows %d, want 24 (2 per row)", n)
			}
			for _, u := range users {
				if v := queryString(t, se.shards[userShard(t, u)], "SELECT total FROM orders WHERE user_id = ?", u); v != fmt.Sprintf("%d.00", u+1) {
					t.Errorf("user %d: total %s after ON DUPLICATE KEY UPDATE", u, v)
				}
			}
			// INSERT IGNORE of duplicates: nothing affected, a warning per row from every shard.
			q, args = multiRowInsert("INSERT IGNORE", users, "")
			res, err = conn.ExecContext(t.Context(), q, args...)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != 0 {
				t.Errorf("INSERT IGNORE of duplicates: affected rows %d, want 0", n)
			}
			if w := queryString(t, conn, "SELECT @@warning_count"); w != "12" {
				t.Errorf("@@warning_count after INSERT IGNORE = %s, want 12", w)
			}
			if r := query(t, conn, "SHOW WARNINGS"); len(r.Rows) != 12 || text(r.Rows[0][1]) != "1062" {
				t.Errorf("SHOW WARNINGS after INSERT IGNORE: %v", r.Rows)
			}
			// REPLACE: 2 per replaced row.
			q, args = multiRowInsert("REPLACE", users, "")
			res, err = conn.ExecContext(t.Context(), q, args...)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != 24 {
				t.Errorf("REPLACE: affected rows %d, want 24", n)
			}
			checkOrders(t, se, users, true)
			noPending(t, se)
		})
	}
	t.Run("LastInsertID", func(t *testing.T) {
		// AUTO_INCREMENT counts per shard: give each shard its own range to tell them apart.
		for i, sh := range se.shards {
			mustExec(t, sh, fmt.Sprintf("ALTER TABLE items AUTO_INCREMENT = %d", 100000*(i+1)))
		}
		for _, params := range []string{"interpolateParams=false", "interpolateParams=true"} {
			db := se.proxy.open(t, appUser, appPass, "shop", params)
			conn, err := db.Conn(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			users := usersOnShards(t, 9000, 6)
			var rows []string
			var args []any
			for _, u := range users {
				rows = append(rows, "(?, ?)")
				args = append(args, u, params)
			}
			res, err := conn.ExecContext(t.Context(), "INSERT INTO items (user_id, note) VALUES "+strings.Join(rows, ", "), args...)
			if err != nil {
				t.Fatal(err)
			}
			first := queryString(t, se.shards[userShard(t, users[0])], "SELECT id FROM items WHERE user_id = ? AND note = ?", users[0], params)
			id, _ := res.LastInsertId()
			if fmt.Sprint(id) != first {
				t.Errorf("%s: LastInsertId %d, want %s, the id of the first row (on shard %d)", params, id, first, userShard(t, users[0]))
			}
			if v := queryString(t, conn, "SELECT LAST_INSERT_ID()"); v != first {
				t.Errorf("%s: LAST_INSERT_ID() = %s, want %s", params, v, first)
			}
			_ = conn.Close()
		}
	})
	t.Run("FailingBranchCommitsNothing", func(t *testing.T) {
		db := se.proxy.open(t, appUser, appPass, "shop")
		users := usersOnShards(t, 12000, 8)
		victim := users[len(users)-1] // not the coordinator's first row
		mustExec(t, se.shards[userShard(t, victim)], fmt.Sprintf("INSERT INTO orders (order_id, user_id, total) VALUES (%d, %d, 1)", victim*10, victim))
		for _, params := range []string{"interpolateParams=false", "interpolateParams=true"} {
			db := se.proxy.open(t, appUser, appPass, "shop", params)
			q, args := multiRowInsert("INSERT", users, "")
			_, err := db.ExecContext(t.Context(), q, args...)
			wantError(t, err, 1062, "23000")
			checkOrders(t, se, users[:len(users)-1], false)
			noPending(t, se)
		}
		// The duplicate on the coordinator's own shard (first row) fails the same way.
		q, args := multiRowInsert("INSERT", append([]int64{victim}, users[:len(users)-1]...), "")
		_, err := db.ExecContext(t.Context(), q, args...)
		wantError(t, err, 1062, "23000")
		checkOrders(t, se, users[:len(users)-1], false)
		noPending(t, se)
	})
	t.Run("Broadcast", func(t *testing.T) {
		db := se.proxy.open(t, appUser, appPass, "shop")
		mustExec(t, db, "ALTER TABLE currencies ADD COLUMN IF NOT EXISTS rate DECIMAL(10,4) NOT NULL DEFAULT 1")
		every := func(q, want string) {
			t.Helper()
			for i, sh := range se.shards {
				if got := queryString(t, sh, q); got != want {
					t.Errorf("shard %d: %s = %s, want %s", i, q, got, want)
				}
			}
		}
		res, err := db.ExecContext(t.Context(), "INSERT INTO currencies (code, rate) VALUES ('GBP', 1.15), ('CHF', 1.05)")
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 2 {
			t.Errorf("broadcast INSERT: affected rows %d, want 2 (one copy's)", n)
		}
		every("SELECT GROUP_CONCAT(code ORDER BY code) FROM currencies WHERE code IN ('GBP', 'CHF')", "CHF,GBP")
		res, err = db.ExecContext(t.Context(), "UPDATE currencies SET rate = ? WHERE code = ?", "1.2", "GBP")
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Errorf("broadcast UPDATE: affected rows %d, want 1", n)
		}
		every("SELECT rate FROM currencies WHERE code = 'GBP'", "1.2000")
		// A copy that disagrees (a duplicate key on shard 2 only) fails the write everywhere.
		mustExec(t, se.shards[2], "INSERT INTO currencies (code) VALUES ('JPY')")
		_, err = db.ExecContext(t.Context(), "INSERT INTO currencies (code) VALUES ('JPY')")
		wantError(t, err, 1062, "23000")
		for i, sh := range se.shards {
			want := "0"
			if i == 2 {
				want = "1"
			}
			if got := queryString(t, sh, "SELECT COUNT(*) FROM currencies WHERE code = 'JPY'"); got != want {
				t.Errorf("shard %d holds %s JPY rows after a failed broadcast INSERT, want %s", i, got, want)
			}
		}
		mustExec(t, se.shards[2], "DELETE FROM currencies WHERE code = 'JPY'")
		res, err = db.ExecContext(t.Context(), "DELETE FROM currencies WHERE code IN ('GBP', 'CHF')")
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 2 {
			t.Errorf("broadcast DELETE: affected rows %d, want 2", n)
		}
		every("SELECT COUNT(*) FROM currencies WHERE code IN ('GBP', 'CHF')", "0")
		_, err = db.ExecContext(t.Context(), "UPDATE currencies SET rate = RAND()")
		wantError(t, err, 1235, "42000")
		// A deadline passing while the shards run the statement: 3024, nothing changed.
		mustExec(t, db, "INSERT INTO currencies (code, rate) VALUES ('SEK', 1)")
		start := time.Now()
		_, err = db.ExecContext(t.Context(), "UPDATE /*+ MAX_EXECUTION_TIME(300) */ currencies SET rate = 9 WHERE code = 'SEK' AND SLEEP(3) = 0")
		wantError(t, err, 3024, "HY000")
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("the interrupted broadcast UPDATE answered after %v", d)
		}
		every("SELECT rate FROM currencies WHERE code = 'SEK'", "1.0000")
		mustExec(t, db, "DELETE FROM currencies WHERE code = 'SEK'")
		every("SELECT COUNT(*) FROM currencies WHERE code = 'SEK'", "0")
		noPending(t, se)
	})
	t.Run("UpdateDeleteAcrossShards", func(t *testing.T) {
		for _, params := range []string{"interpolateParams=false", "interpolateParams=true"} {
			db := se.proxy.open(t, appUser, appPass, "shop", params)
			users := usersOnShards(t, 14000, 8)
			for _, u := range users {
				mustExecArgs(t, db, "INSERT INTO orders (order_id, user_id, total) VALUES (6, ?, 606)", u)
			}
			// Without the shard key: every shard, affected rows summed.
			res, err := db.ExecContext(t.Context(), "UPDATE orders SET total = ? WHERE order_id = 6 AND total = ?", 607, 606)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != int64(len(users)) {
				t.Errorf("%s: UPDATE over every shard: affected rows %d, want %d", params, n, len(users))
			}
			for _, u := range users {
				if v := queryString(t, se.shards[userShard(t, u)], "SELECT total FROM orders WHERE user_id = ? AND order_id = 6", u); v != "607.00" {
					t.Errorf("user %d: total %s after the UPDATE", u, v)
				}
			}
			// A duplicate key on one shard: nothing changes anywhere.
			victim := users[3]
			mustExec(t, se.shards[userShard(t, victim)], fmt.Sprintf("INSERT INTO orders (order_id, user_id, total) VALUES (5, %d, 5)", victim))
			_, err = db.ExecContext(t.Context(), "UPDATE orders SET order_id = 5 WHERE order_id = 6 AND total = 607")
			wantError(t, err, 1062, "23000")
			for _, u := range users {
				if n := queryString(t, se.shards[userShard(t, u)], "SELECT COUNT(*) FROM orders WHERE user_id = ? AND order_id = 6", u); n != "1" {
					t.Errorf("user %d: the failed UPDATE changed its order on shard %d", u, userShard(t, u))
				}
			}
			mustExec(t, se.shards[userShard(t, victim)], fmt.Sprintf("DELETE FROM orders WHERE user_id = %d AND order_id = 5", victim))
			// Keys of several shards: those shards.
			in := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(users)), ", "), "[]")
			res, err = db.ExecContext(t.Context(), "DELETE FROM orders WHERE order_id = 6 AND user_id IN ("+in+")")
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != int64(len(users)) {
				t.Errorf("%s: DELETE with keys of several shards: affected rows %d, want %d", params, n, len(users))
			}
			for i, sh := range se.shards {
				if n := queryString(t, sh, "SELECT COUNT(*) FROM orders WHERE order_id = 6 AND total >= 606"); n != "0" {
					t.Errorf("shard %d keeps %s rows the DELETE named", i, n)
				}
			}
			_, err = db.ExecContext(t.Context(), "DELETE FROM orders WHERE total < 0 LIMIT 1")
			wantError(t, err, 1235, "42000")
		}
		noPending(t, se)
	})
	t.Run("CheckConfigLiveReportsXA", func(t *testing.T) {
		out := checkConfigLive(t, se.cfg)
		for i := range se.shards {
			want := fmt.Sprintf("live: backend b%d: XA decision log shardproxy.xa_decisions OK", i)
			if !strings.Contains(out, want) || !strings.Contains(out, "0 prepared proxy XA branches awaiting recovery") {
				t.Errorf("check-config --live does not report %q:\n%s", want, out)
			}
		}
	})
	t.Run("Latency", func(t *testing.T) { measureSplitLatency(t, se) })
}

// checkConfigLive runs `shardproxy check-config --live` on cfg and returns its output.
func checkConfigLive(t *testing.T, cfg *proxyConfig) string {
	t.Helper()
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "live.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), proxyBin, "check-config", "--live", path).CombinedOutput()
	if err != nil {
		t.Fatalf("check-config --live: %v\n%s", err, out)
	}
	return string(out)
}

// measureSplitLatency logs the mean latency of a two-row INSERT on one shard and of one
// split over two shards (an XA commit), through the proxy.
func measureSplitLatency(t *testing.T, se *shardedEnv) {
	db := se.proxy.open(t, appUser, appPass, "shop", "interpolateParams=true")
	db.SetMaxIdleConns(1)
	a := int64(20000)
	same, other := a+1, a+1
	for userShard(t, same) != userShard(t, a) {
		same++
	}
	for userShard(t, other) == userShard(t, a) {
		other++
	}
	const n = 100
	run := func(b int64) time.Duration {
		mustExec(t, db, "DELETE FROM orders WHERE user_id = "+fmt.Sprint(a), "DELETE FROM orders WHERE user_id = "+fmt.Sprint(b))
		start := time.Now()
		for i := range n {
			if _, err := db.Exec("INSERT INTO orders (order_id, user_id) VALUES (?, ?), (?, ?)", i, a, i, b); err != nil {
				t.Fatal(err)
			}
		}
		return time.Since(start) / n
	}
	one, two := run(same), run(other)
	t.Logf("2-row INSERT through the proxy, mean of %d: one shard %v, split over two shards (XA) %v", n, one, two)
}

// testXARecovery crashes proxies in the middle of multi-shard commits (the test-only
// SHARDPROXY_TEST_XA_CRASH): after the decision, the restarted proxy's recovery commits the
// prepared branches; before it, recovery rolls them back. The sharded env's proxy is
// replaced by the restarted one.
func testXARecovery(t *testing.T, se *shardedEnv) {
	if err := se.proxy.stop(t, 30*time.Second); err != nil {
		t.Fatalf("stopping the proxy: %v", err)
	}
	crash := func(point string, users []int64) {
		t.Helper()
		p := startProxyEnv(t, se.cfg, "SHARDPROXY_TEST_XA_CRASH="+point)
		db := openDB(t, p.dsn(appUser, appPass, "shop"))
		q, args := multiRowInsert("INSERT", users, "")
		if _, err := db.ExecContext(t.Context(), q, args...); err == nil {
			t.Fatalf("crash at %s: the INSERT succeeded", point)
		}
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("the proxy did not exit at %s", point)
		}
		if ee, ok := p.err.(*exec.ExitError); !ok || ee.ExitCode() != 86 {
			t.Fatalf("the proxy exited with %v at %s, want the simulated crash's status 86\n%s", p.err, point, tail(p.log.String(), 4<<10))
		}
	}
	decided := usersOnShards(t, 30000, 8)
	undecided := usersOnShards(t, 31000, 8)
	// The undecided write first: the second crashing proxy's own recovery pass then finds
	// its branches too young to presume an abort, and leaves them to the restarted proxy.
	crash("prepared", undecided)
	crash("committed", decided)

	// Both left prepared branches on the participants' servers; the decided one's rows are
	// committed on its coordinator's shard already, the undecided one's nowhere.
	pending := xaPending(t, se)
	n := 0
	for _, p := range pending {
		n += len(p)
	}
	if n == 0 {
		t.Fatal("no prepared XA branches after the crashes")
	}
	t.Logf("prepared branches after the crashes: %v", pending)
	home := func(u int64) *sql.DB { return se.shards[userShard(t, u)] }
	if got := queryString(t, home(decided[0]), "SELECT COUNT(*) FROM orders WHERE user_id = ?", decided[0]); got != "1" {
		t.Errorf("the coordinator's own row of the decided write: %s rows", got)
	}
	for _, u := range undecided {
		if got := queryString(t, home(u), "SELECT COUNT(*) FROM orders WHERE user_id = ?", u); got != "0" {
			t.Errorf("user %d of the undecided write is visible before recovery", u)
		}
	}

	// A decision older than the retention, with no branch left: recovery forgets it.
	mustExec(t, se.servers[0].DB(t, ""), "INSERT INTO shardproxy.xa_decisions VALUES ('shardproxy:0:0:0:0', 'commit', NOW(6) - INTERVAL 2 DAY)")
	recent := queryString(t, se.servers[0].DB(t, ""), "SELECT COUNT(*) FROM shardproxy.xa_decisions")

	metricsAddr := freeAddr(t)
	se.proxy = startProxyArgs(t, se.cfg, "--metrics-addr", metricsAddr)
	eventually(t, 90*time.Second, "recovery resolves every prepared branch", func() error {
		if p := xaPending(t, se); fmt.Sprint(p) != "[[] [] [] []]" {
			return fmt.Errorf("still prepared: %v", p)
		}
		return nil
	})
	checkOrders(t, se, decided, true)
	checkOrders(t, se, undecided, false)
	eventually(t, 30*time.Second, "recovery deletes decisions older than a day", func() error {
		if n := queryString(t, se.servers[0].DB(t, ""), "SELECT COUNT(*) FROM shardproxy.xa_decisions WHERE gtrid = 'shardproxy:0:0:0:0'"); n != "0" {
			return fmt.Errorf("%s old decisions", n)
		}
		return nil
	})
	if n := queryString(t, se.servers[0].DB(t, ""), "SELECT COUNT(*) FROM shardproxy.xa_decisions"); n == "0" || recent == "1" {
		t.Errorf("recent decisions on server 0: %s (before: %s, with the old one); want them kept", n, recent)
	}
	if !strings.Contains(se.proxy.log.String(), `msg="XA recovery" decision=commit`) || !strings.Contains(se.proxy.log.String(), `msg="XA recovery" decision=abort`) {
		t.Errorf("the restarted proxy did not log both recoveries:\n%s", grepLines(se.proxy.log.String(), "XA"))
	}
	// The restarted proxy works, and writes across shards again.
	db := se.proxy.open(t, appUser, appPass, "shop")
	users := usersOnShards(t, 32000, 8)
	q, args := multiRowInsert("INSERT", users, "")
	if _, err := db.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
	checkOrders(t, se, users, true)
	body := httpGet(t, "http://"+metricsAddr+"/metrics")
	for _, m := range []struct {
		name, label, value string
		min                int
	}{
		{"shardproxy_xa_recovered_branches_total", "decision", "commit", 1},
		{"shardproxy_xa_recovered_branches_total", "decision", "abort", 1},
		{"shardproxy_xa_transactions_total", "outcome", "committed", 1},
	} {
		if n := metricValue(t, body, m.name, m.label, m.value); n < m.min {
			t.Errorf("%s{%s=%q} = %d, want at least %d", m.name, m.label, m.value, n, m.min)
		}
	}
}
