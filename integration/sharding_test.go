package integration

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
	"github.com/shardproxy/shardproxy/rules"
)

// shardedEnv is four real MariaDB servers, each holding one shard of the logical database
// shop (physical database shop on every server), and a proxy routing over them.
type shardedEnv struct {
	servers [4]*mariadbtest.Server
	shards  [4]*sql.DB // root on each server's shop database
	proxy   *proxy
	cfg     *proxyConfig
}

func newShardedEnv(t *testing.T, extraTables ...map[string]any) *shardedEnv {
	t.Helper()
	var se shardedEnv
	for i := range se.servers {
		se.servers[i] = mariadbtest.Start(t, mariadbtest.WithDatabases("shop"))
		se.shards[i] = se.servers[i].DB(t, "shop")
	}
	cfg := &proxyConfig{
		Listen: "127.0.0.1:0",
		Users:  []userConfig{{Name: appUser, PasswordHash: hashPassword(t, "native", appPass)}},
		Schemes: []map[string]any{
			{"name": "by_user", "function": "hash", "slots": 4, "shards": []string{"s0", "s1", "s2", "s3"}},
			{"name": "by_account", "function": "mod", "slots": 8, "shards": []string{"s0", "s1", "s2", "s3"}},
		},
		Databases: []databaseConfig{{Name: "shop", DefaultShard: "s0", Tables: []map[string]any{
			{"name": "orders", "kind": "sharded", "key": "user_id", "scheme": "by_user"},
			{"name": "accounts", "kind": "sharded", "key": "account_id", "scheme": "by_account", "table_per_slot": true},
			{"name": "currencies", "kind": "broadcast"},
		}}},
	}
	cfg.Databases[0].Tables = append(cfg.Databases[0].Tables, extraTables...)
	for i, srv := range se.servers {
		name := fmt.Sprintf("b%d", i)
		cfg.Backends = append(cfg.Backends, backendConfig{Name: name, Addr: srv.Addr(), User: srv.User, Password: srv.Password,
			Pool: poolConfig{MaxOpen: 10, MaxIdle: 10}})
		cfg.Shards = append(cfg.Shards, shardConfig{Name: fmt.Sprintf("s%d", i), Primary: name, Database: "shop"})
	}
	se.proxy, se.cfg = startProxy(t, cfg), cfg
	return &se
}

// userShard is the shard the rules put a user's orders on, computed from the reference
// hash, independently of the proxy.
func userShard(t *testing.T, userID int64) int {
	slot, err := rules.HashFunc{N: 4}.Slot(rules.IntValue(userID))
	if err != nil {
		t.Fatal(err)
	}
	return slot // one slot per shard
}

// TestSharding drives four real MariaDB shards through the proxy: DDL fan-out, single-shard
// routing with literals and parameters, table-per-slot layouts, broadcast reads, and the
// refusals that keep results right. Where each row lives is checked on the shards directly.
func TestSharding(t *testing.T) {
	se := newShardedEnv(t, map[string]any{"name": "items", "kind": "sharded", "key": "user_id", "scheme": "by_user"}) // AUTO_INCREMENT: xa_test.go
	for _, params := range []string{"interpolateParams=false", "interpolateParams=true"} {
		db := se.proxy.open(t, appUser, appPass, "shop", params)
		mustExec(t, db,
			"CREATE TABLE IF NOT EXISTS orders (order_id BIGINT NOT NULL, user_id BIGINT NOT NULL, total DECIMAL(10,2), PRIMARY KEY (user_id, order_id))",
			"CREATE TABLE IF NOT EXISTS accounts (account_id BIGINT PRIMARY KEY, owner VARCHAR(32))",
			"CREATE TABLE IF NOT EXISTS currencies (code CHAR(3) PRIMARY KEY)",
			"CREATE TABLE IF NOT EXISTS items (id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id BIGINT NOT NULL, note VARCHAR(32))",
			"CREATE TABLE IF NOT EXISTS settings (name VARCHAR(32) PRIMARY KEY, value VARCHAR(32))")
	}
	t.Run("DDLReachesEveryPhysicalTable", func(t *testing.T) {
		for i, sh := range se.shards {
			tables := strings.Split(queryString(t, sh, "SELECT GROUP_CONCAT(table_name ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'shop'"), ",")
			want := []string{fmt.Sprintf("accounts_%04d", 2*i), fmt.Sprintf("accounts_%04d", 2*i+1), "currencies", "items", "orders"}
			if i == 0 {
				want = append(want, "settings") // single tables live on the default shard
			}
			if strings.Join(tables, ",") != strings.Join(want, ",") {
				t.Errorf("shard %d has tables %v, want %v", i, tables, want)
			}
		}
	})
	for _, params := range []string{"interpolateParams=false", "interpolateParams=true"} {
		t.Run("Orders/"+params, func(t *testing.T) {
			db := se.proxy.open(t, appUser, appPass, "shop", params)
			base := int64(1000)
			if strings.HasSuffix(params, "true") {
				base = 2000
			}
			for u := base; u < base+40; u++ {
				mustExecArgs(t, db, "INSERT INTO orders (order_id, user_id, total) VALUES (?, ?, ?)", u*10, u, "12.50")
			}
			for u := base; u < base+40; u++ {
				if got := queryString(t, db, "SELECT order_id FROM orders WHERE user_id = ?", u); got != fmt.Sprint(u*10) {
					t.Fatalf("user %d: order %q through the proxy", u, got)
				}
				want := userShard(t, u)
				for i, sh := range se.shards {
					n := queryString(t, sh, "SELECT COUNT(*) FROM orders WHERE user_id = ?", u)
					if (i == want) != (n == "1") {
						t.Fatalf("user %d: shard %d holds %s rows; the rules put it on shard %d", u, i, n, want)
					}
				}
			}
			// IN within one shard, UPDATE and DELETE with the key.
			mustExecArgs(t, db, "UPDATE orders SET total = 99 WHERE user_id = ?", base)
			if v := queryString(t, se.shards[userShard(t, base)], "SELECT total FROM orders WHERE user_id = ?", base); v != "99.00" {
				t.Errorf("UPDATE reached the shard as %q", v)
			}
			mustExecArgs(t, db, "DELETE FROM orders WHERE user_id = ?", base+1)
			if n := queryString(t, db, "SELECT COUNT(*) FROM orders WHERE user_id = ?", base+1); n != "0" {
				t.Errorf("DELETE left %s rows", n)
			}
		})
	}
	t.Run("TablePerSlot", func(t *testing.T) {
		db := se.proxy.open(t, appUser, appPass, "shop")
		for a := int64(1); a <= 16; a++ {
			mustExecArgs(t, db, "INSERT INTO accounts (account_id, owner) VALUES (?, ?)", a, fmt.Sprint("owner-", a))
		}
		for a := int64(1); a <= 16; a++ {
			slot := a % 8
			table := fmt.Sprintf("accounts_%04d", slot)
			if got := queryString(t, se.shards[slot/2], "SELECT owner FROM "+table+" WHERE account_id = ?", a); got != fmt.Sprint("owner-", a) {
				t.Errorf("account %d: %s on shard %d has %q", a, table, slot/2, got)
			}
			if got := queryString(t, db, "SELECT accounts.owner FROM accounts WHERE account_id = ?", a); got != fmt.Sprint("owner-", a) {
				t.Errorf("account %d through the proxy: %q", a, got)
			}
		}
	})
	t.Run("ShowTablesLogical", func(t *testing.T) {
		db := se.proxy.open(t, appUser, appPass, "shop")
		r := query(t, db, "SHOW TABLES")
		var names []string
		for _, row := range r.Rows {
			names = append(names, text(row[0]))
		}
		if got := strings.Join(names, ","); got != "accounts,currencies,items,orders,settings" {
			t.Errorf("SHOW TABLES = %s, want the logical tables", got)
		}
		if got := queryString(t, db, "SHOW TABLES LIKE 'acc%'"); got != "accounts" {
			t.Errorf("SHOW TABLES LIKE = %s", got)
		}
	})
	t.Run("BroadcastAndSingle", func(t *testing.T) {
		for _, sh := range se.shards {
			mustExec(t, sh, "REPLACE INTO currencies VALUES ('EUR')")
		}
		db := se.proxy.open(t, appUser, appPass, "shop")
		if v := queryString(t, db, "SELECT code FROM currencies"); v != "EUR" {
			t.Errorf("broadcast read: %q", v)
		}
		mustExec(t, db, "REPLACE INTO settings VALUES ('a', 'b')")
		if v := queryString(t, se.shards[0], "SELECT value FROM settings WHERE name = 'a'"); v != "b" {
			t.Errorf("single table on the default shard: %q", v)
		}
	})
	t.Run("CheckConfigLive", func(t *testing.T) { testCheckLive(t, se) })
	t.Run("MultiShardWrites", func(t *testing.T) { testMultiShardWrites(t, se) })
	t.Run("Refusals", func(t *testing.T) {
		db := se.proxy.open(t, appUser, appPass, "shop")
		a, b := int64(5000), int64(5001)
		for userShard(t, b) == userShard(t, a) {
			b++
		}
		for _, q := range []string{
			// COUNT(DISTINCT x), DISTINCT aggregates over several argument lists and the
			// listed functions over aggregates are merged now (TestScatter); a function
			// outside that list is not.
			"SELECT MD5(COUNT(*)) FROM orders",
			fmt.Sprintf("UPDATE orders SET user_id = %d WHERE user_id = %d", b, a),
		} {
			_, err := db.Exec(q)
			wantError(t, err, 1235, "42000")
		}
		// A transaction writing to a second shard is refused and rolled back whole.
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec("INSERT INTO orders (order_id, user_id) VALUES (1, ?)", a); err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec("INSERT INTO orders (order_id, user_id) VALUES (1, ?)", b)
		wantError(t, err, 1235, "42000")
		_ = tx.Rollback()
		for _, u := range []int64{a, b} {
			if n := queryString(t, se.shards[userShard(t, u)], "SELECT COUNT(*) FROM orders WHERE user_id = ?", u); n != "0" {
				t.Errorf("user %d: %s rows committed by a refused multi-shard transaction", u, n)
			}
		}
	})
	t.Run("XARecovery", func(t *testing.T) { testXARecovery(t, se) }) // last: it replaces the proxy
}

// testCheckLive runs `shardproxy check-config --live` against the shards: it passes, then
// reports a physical table dropped behind the proxy's back.
func testCheckLive(t *testing.T, se *shardedEnv) {
	data, err := json.Marshal(se.cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "live.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func() (string, error) {
		out, err := exec.CommandContext(t.Context(), proxyBin, "check-config", "--live", path).CombinedOutput()
		return string(out), err
	}
	if out, err := run(); err != nil || !strings.Contains(out, "live OK") {
		t.Fatalf("check-config --live on a complete layout: %v\n%s", err, out)
	}
	mustExec(t, se.shards[1], "DROP TABLE accounts_0003")
	defer mustExec(t, se.shards[1], "CREATE TABLE accounts_0003 LIKE accounts_0002")
	out, err := run()
	if err == nil || !strings.Contains(out, "shard s1: table shop.accounts_0003 is missing") {
		t.Fatalf("check-config --live with a missing table: %v\n%s", err, out)
	}
}

func mustExecArgs(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s %v: %v", q, args, err)
	}
}
