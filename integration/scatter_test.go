package integration

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/rules"
)

// scatterTables are the differential test's tables: users, orders and items sharded by
// user_id (hash over 4 shards), a ledger sharded by account_id mod 8 with a physical table
// per slot, and the broadcast currencies of the shared sharded environment.
var scatterTables = []map[string]any{
	{"name": "d_users", "kind": "sharded", "key": "user_id", "scheme": "by_user"},
	{"name": "d_orders", "kind": "sharded", "key": "user_id", "scheme": "by_user"},
	{"name": "d_items", "kind": "sharded", "key": "user_id", "scheme": "by_user"},
	{"name": "d_ledger", "kind": "sharded", "key": "account_id", "scheme": "by_account", "table_per_slot": true, "full_table_writes": "forbid"},
}

var scatterDDL = []string{
	"CREATE TABLE d_users (user_id BIGINT PRIMARY KEY, name VARCHAR(40) NOT NULL, country CHAR(2), born DATE)",
	"CREATE TABLE d_orders (id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, status VARCHAR(16), total DECIMAL(10,2), currency CHAR(3), created_at DATETIME, note VARCHAR(64)) ",
	"CREATE TABLE d_items (id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL, user_id BIGINT NOT NULL, sku VARCHAR(16) NOT NULL, qty INT NOT NULL, price DECIMAL(8,2))",
	"CREATE TABLE d_ledger (id BIGINT PRIMARY KEY, account_id BIGINT NOT NULL, amount DECIMAL(12,2) NOT NULL, kind VARCHAR(8) NOT NULL, created_at DATETIME NOT NULL)",
	"CREATE TABLE currencies (code CHAR(3) PRIMARY KEY, name VARCHAR(32) NOT NULL, rate DECIMAL(10,4))",
}

// scatterColumns are the column lists of the generated INSERTs (the proxy needs the shard
// key named).
var scatterColumns = map[string]string{
	"currencies": "(code, name, rate)",
	"d_users":    "(user_id, name, country, born)",
	"d_orders":   "(id, user_id, status, total, currency, created_at, note)",
	"d_items":    "(id, order_id, user_id, sku, qty, price)",
	"d_ledger":   "(id, account_id, amount, kind, created_at)",
}

// scatterRow is one generated row: its table, shard key value and column values as SQL.
type scatterRow struct {
	table string
	key   int64
	vals  string
}

// scatterData generates the data set from seed: NULLs, duplicates, negative and zero
// decimals, unicode names whose case-insensitive order differs from their byte order, dates.
func scatterData(seed uint64) []scatterRow {
	r := rand.New(rand.NewPCG(seed, 7))
	names := []string{"alice", "Bob", "carol", "Dave", "émile", "Frank", "gaëlle", "Hugo", "ivan", "Jörg", "kim", "Łukasz",
		"mia", "Nils", "otto", "Pía", "quinn", "Rolf", "søren", "Tess", "ulla", "Vera", "walt", "Xiu", "yann", "Zoë", "ßen", "Ωmega", ""}
	statuses := []string{"new", "paid", "shipped", "cancelled", "NULL"}
	currencies := []string{"EUR", "USD", "GBP", "JPY", "NULL"}
	countries := []string{"DE", "FR", "US", "JP", "NULL"}
	q := func(s string) string {
		if s == "NULL" {
			return s
		}
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	var rows []scatterRow
	for _, c := range [][3]string{{"EUR", "Euro", "1.0000"}, {"USD", "US dollar", "0.9200"}, {"GBP", "Pound", "1.1700"}, {"JPY", "Yen", "NULL"}} {
		rows = append(rows, scatterRow{table: "currencies", key: -1, vals: fmt.Sprintf("(%s, %s, %s)", q(c[0]), q(c[1]), c[2])})
	}
	nextOrder, nextItem := int64(1), int64(1)
	for u := int64(1); u <= 120; u++ {
		name := names[int(u)%len(names)] + strconv.Itoa(int(u)/len(names))
		born := "NULL"
		if r.IntN(5) > 0 {
			born = fmt.Sprintf("'%d-%02d-%02d'", 1950+r.IntN(50), 1+r.IntN(12), 1+r.IntN(28))
		}
		rows = append(rows, scatterRow{table: "d_users", key: u, vals: fmt.Sprintf("(%d, %s, %s, %s)", u, q(name), q(countries[r.IntN(len(countries))]), born)})
		for range r.IntN(8) {
			total := "NULL"
			if r.IntN(10) > 0 {
				total = fmt.Sprintf("%d.%02d", r.IntN(400)-50, r.IntN(100))
			}
			created := fmt.Sprintf("'2026-%02d-%02d %02d:%02d:%02d'", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60))
			note := []string{"'gift'", "'Gift'", "'rush ✈'", "''", "NULL", "'résumé'"}[r.IntN(6)]
			rows = append(rows, scatterRow{table: "d_orders", key: u, vals: fmt.Sprintf("(%d, %d, %s, %s, %s, %s, %s)",
				nextOrder, u, q(statuses[r.IntN(len(statuses))]), total, q(currencies[r.IntN(len(currencies))]), created, note)})
			for range r.IntN(4) {
				price := "NULL"
				if r.IntN(8) > 0 {
					price = fmt.Sprintf("%d.%02d", r.IntN(100), r.IntN(100))
				}
				rows = append(rows, scatterRow{table: "d_items", key: u, vals: fmt.Sprintf("(%d, %d, %d, 'sku-%d', %d, %s)",
					nextItem, nextOrder, u, r.IntN(15), r.IntN(5), price)})
				nextItem++
			}
			nextOrder++
		}
	}
	for id := int64(1); id <= 400; id++ {
		acct := int64(1 + r.IntN(40))
		rows = append(rows, scatterRow{table: "d_ledger", key: acct, vals: fmt.Sprintf("(%d, %d, %d.%02d, %s, '2026-%02d-%02d %02d:00:00')",
			id, acct, r.IntN(2000)-1000, r.IntN(100), q([]string{"debit", "credit", "fee"}[r.IntN(3)]), 1+r.IntN(12), 1+r.IntN(28), r.IntN(24))})
	}
	return rows
}

// scatterQuery is one query of the corpus; ordered says its ORDER BY is total, so the rows
// must match in order (otherwise they are compared as multisets).
type scatterQuery struct {
	sql     string
	args    []any
	ordered bool
}

// scatterCorpus is the hand-written shapes plus, from seed, random instances of templates.
func scatterCorpus(seed uint64) []scatterQuery {
	r := rand.New(rand.NewPCG(seed, 11))
	fixed := []scatterQuery{
		{sql: "SELECT * FROM d_orders", ordered: false},
		{sql: "SELECT id, user_id, total FROM d_orders ORDER BY total DESC, id", ordered: true},
		{sql: "SELECT id, total FROM d_orders ORDER BY total, id LIMIT 7", ordered: true},
		{sql: "SELECT id, total FROM d_orders ORDER BY total DESC, id DESC LIMIT 5, 9", ordered: true},
		{sql: "SELECT name, user_id FROM d_users ORDER BY name, user_id", ordered: true},
		{sql: "SELECT name FROM d_users ORDER BY name DESC LIMIT 10", ordered: true},
		{sql: "SELECT MIN(name), MAX(name), COUNT(*), COUNT(country), COUNT(born) FROM d_users", ordered: true},
		{sql: "SELECT COUNT(*), SUM(total), MIN(total), MAX(total), AVG(total) FROM d_orders", ordered: true},
		{sql: "SELECT status, COUNT(*), SUM(total), AVG(total), MIN(created_at), MAX(currency) FROM d_orders GROUP BY status", ordered: false},
		{sql: "SELECT status, COUNT(*) FROM d_orders GROUP BY status ORDER BY status", ordered: true},
		{sql: "SELECT currency, status, COUNT(*) AS n FROM d_orders GROUP BY currency, status HAVING n > 3 ORDER BY n DESC, currency, status", ordered: true},
		{sql: "SELECT currency, SUM(total) AS s FROM d_orders GROUP BY currency HAVING SUM(total) > 100 AND COUNT(*) >= 2 ORDER BY s DESC", ordered: true},
		{sql: "SELECT DISTINCT status FROM d_orders", ordered: false},
		{sql: "SELECT DISTINCT currency, status FROM d_orders ORDER BY currency DESC, status LIMIT 6", ordered: true},
		{sql: "SELECT COUNT(DISTINCT user_id) FROM d_orders", ordered: true},
		{sql: "SELECT COUNT(DISTINCT status), COUNT(*), SUM(total), AVG(total) FROM d_orders WHERE total > 1000000", ordered: true},
		{sql: "SELECT COUNT(DISTINCT status) FROM d_orders", ordered: true},
		{sql: "SELECT COUNT(DISTINCT total), SUM(DISTINCT total), AVG(DISTINCT total), COUNT(total), AVG(total), MIN(total) FROM d_orders", ordered: true},
		{sql: "SELECT currency, COUNT(DISTINCT status) AS n, COUNT(*), MAX(created_at) FROM d_orders GROUP BY currency ORDER BY n DESC, currency", ordered: true},
		{sql: "SELECT country, COUNT(DISTINCT name) FROM d_users GROUP BY country HAVING COUNT(DISTINCT name) > 2 ORDER BY country", ordered: true},
		{sql: "SELECT sku, COUNT(DISTINCT qty), SUM(DISTINCT qty), AVG(DISTINCT qty), AVG(price) FROM d_items GROUP BY sku", ordered: false},
		{sql: "SELECT kind, COUNT(DISTINCT account_id), AVG(amount) FROM d_ledger GROUP BY kind ORDER BY kind", ordered: true},
		{sql: "SELECT SUM(total) / COUNT(*), SUM(total) / COUNT(total), MAX(total) - MIN(total), COUNT(*) + 1, ROUND(AVG(total), 2), ROUND(AVG(total)), TRUNCATE(AVG(total), 1) FROM d_orders", ordered: true},
		{sql: "SELECT SUM(total) / COUNT(*), COUNT(*) + 1, COUNT(DISTINCT status) * 2 FROM d_orders WHERE total > 1000000", ordered: true},
		{sql: "SELECT status, SUM(total) / COUNT(*) AS r, COUNT(DISTINCT currency) + 1 FROM d_orders GROUP BY status HAVING ROUND(AVG(total), 1) > 10 ORDER BY r DESC, status", ordered: true},
		{sql: "SELECT currency, ABS(MIN(total) - MAX(total)), IFNULL(SUM(total), 0), COALESCE(MAX(note), 'none'), NULLIF(COUNT(*), 3) FROM d_orders GROUP BY currency", ordered: false},
		{sql: "SELECT currency, COUNT(*) FROM d_orders GROUP BY currency ORDER BY MAX(total) - MIN(total) DESC, currency", ordered: true},
		{sql: "SELECT sku, SUM(qty) DIV COUNT(*), SUM(qty) % 7, AVG(price) * 2, FLOOR(AVG(price)), CEIL(AVG(price)), -SUM(qty) FROM d_items GROUP BY sku", ordered: false},
		{sql: "SELECT id FROM d_orders WHERE user_id IN (SELECT user_id FROM d_users WHERE country = 'DE') ORDER BY id", ordered: true},
		{sql: "SELECT COUNT(*), SUM(total) FROM d_orders WHERE user_id NOT IN (SELECT user_id FROM d_users WHERE born < '1970-01-01')", ordered: true},
		{sql: "SELECT id, qty FROM d_items WHERE (user_id, order_id) IN (SELECT user_id, id FROM d_orders WHERE status = 'paid') ORDER BY id", ordered: true},
		{sql: "SELECT id FROM d_orders WHERE currency IN (SELECT currency FROM d_orders WHERE total > 1000000) OR id < 3 ORDER BY id", ordered: true},
		{sql: "SELECT name FROM d_users WHERE NOT EXISTS (SELECT 1 FROM d_orders WHERE total > 1000000) AND user_id < 10 ORDER BY user_id", ordered: true},
		{sql: "SELECT status, COUNT(*) FROM d_orders WHERE user_id IN (SELECT user_id FROM d_users WHERE name LIKE 'a%') GROUP BY status ORDER BY status", ordered: true},
		{sql: "SELECT kind, ROUND(AVG(amount), 1), TRUNCATE(SUM(amount) / 3, 2), ROUND(SUM(amount), -2), SUM(amount) / 7 FROM d_ledger GROUP BY kind ORDER BY kind", ordered: true},
		{sql: "SELECT user_id, COUNT(*), SUM(total), GROUP_CONCAT(id ORDER BY id) FROM d_orders GROUP BY user_id HAVING COUNT(*) > 2 ORDER BY SUM(total) DESC, user_id LIMIT 8", ordered: true},
		{sql: "SELECT o.id, i.sku, i.qty FROM d_orders o JOIN d_items i ON o.user_id = i.user_id AND o.id = i.order_id ORDER BY o.id, i.id", ordered: true},
		{sql: "SELECT u.name, COUNT(*) FROM d_users u JOIN d_orders o USING (user_id) GROUP BY u.name ORDER BY 2 DESC, 1 LIMIT 5", ordered: true},
		{sql: "SELECT o.id, c.name, o.total * c.rate FROM d_orders o JOIN currencies c ON c.code = o.currency ORDER BY o.id", ordered: true},
		{sql: "SELECT c.code, COUNT(*), SUM(o.total) FROM d_orders o JOIN currencies c ON c.code = o.currency GROUP BY c.code", ordered: false},
		{sql: "SELECT AVG(qty), SUM(qty), AVG(price), COUNT(price) FROM d_items", ordered: true},
		{sql: "SELECT sku, AVG(qty), MAX(price) FROM d_items GROUP BY sku ORDER BY sku", ordered: true},
		{sql: "SELECT account_id, SUM(amount), COUNT(*) FROM d_ledger GROUP BY account_id ORDER BY account_id", ordered: true},
		{sql: "SELECT kind, COUNT(*), AVG(amount), MIN(amount), MAX(created_at) FROM d_ledger GROUP BY kind ORDER BY kind", ordered: true},
		{sql: "SELECT * FROM d_ledger ORDER BY created_at DESC, id LIMIT 12", ordered: true},
		{sql: "SELECT id, amount FROM d_ledger WHERE account_id IN (3, 11, 12) ORDER BY amount, id", ordered: true},
		{sql: "SELECT DATE(created_at) AS d, COUNT(*) FROM d_orders GROUP BY d ORDER BY d LIMIT 10", ordered: true},
		{sql: "SELECT YEAR(born) AS y, COUNT(*) FROM d_users GROUP BY y ORDER BY y", ordered: true},
		{sql: "SELECT id FROM d_orders WHERE note LIKE '%é%' ORDER BY id", ordered: true},
		{sql: "SELECT id, created_at FROM d_orders ORDER BY created_at DESC, id LIMIT 15", ordered: true},
		{sql: "SELECT id, user_id FROM d_orders WHERE user_id IN (1, 2, 3, 4, 5, 6) ORDER BY id", ordered: true},
		{sql: "SELECT COUNT(*) FROM d_orders WHERE total IS NULL", ordered: true},
		{sql: "SELECT total, COUNT(*) FROM d_orders GROUP BY total ORDER BY total LIMIT 10", ordered: true},
		{sql: "SELECT id, total FROM d_orders WHERE user_id > ? ORDER BY id LIMIT ?", args: []any{60, 10}, ordered: true},
		{sql: "SELECT status, COUNT(*) FROM d_orders WHERE total > ? GROUP BY status ORDER BY status", args: []any{"20.5"}, ordered: true},
		{sql: "SELECT MAX(total) FROM d_orders WHERE user_id IN (?, ?, ?)", args: []any{7, 8, 9}, ordered: true},
		{sql: "SELECT id, total FROM d_orders WHERE user_id = 7 AND id IN (SELECT order_id FROM d_items WHERE user_id = 7) ORDER BY id", ordered: true},
		{sql: "SELECT d.n FROM (SELECT COUNT(*) AS n FROM d_ledger WHERE account_id = 11) d", ordered: true},
		{sql: "SELECT currency, COUNT(*) AS n FROM d_orders GROUP BY currency HAVING n >= ? ORDER BY n DESC, currency", args: []any{3}, ordered: true},
		{sql: "SELECT user_id, SUM(total) FROM d_orders WHERE total > ? GROUP BY user_id HAVING SUM(total) BETWEEN ? AND ? OR COUNT(*) = ? ORDER BY user_id",
			args: []any{"5.5", 100, "450.25", 2}, ordered: true},
	}
	var out []scatterQuery
	out = append(out, fixed...)
	statuses := []string{"new", "paid", "shipped", "cancelled"}
	templates := []func() scatterQuery{
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT id, status, total FROM d_orders WHERE total > %d ORDER BY total DESC, id LIMIT %d, %d", r.IntN(300)-60, r.IntN(20), 1+r.IntN(30)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT COUNT(*), SUM(total), AVG(total), MIN(total), MAX(total) FROM d_orders WHERE status = '%s'", statuses[r.IntN(4)]), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT currency, COUNT(*) AS n, SUM(total) FROM d_orders WHERE created_at >= '2026-%02d-01' GROUP BY currency HAVING n >= %d ORDER BY n DESC, currency", 1+r.IntN(12), r.IntN(10)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT name, user_id FROM d_users WHERE user_id %% %d = %d ORDER BY name DESC, user_id LIMIT %d", 2+r.IntN(5), r.IntN(2), 1+r.IntN(20)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT DISTINCT status, currency FROM d_orders WHERE total < %d ORDER BY status DESC, currency LIMIT %d", r.IntN(300), 1+r.IntN(12)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT o.user_id, SUM(i.qty) AS q FROM d_orders o JOIN d_items i ON i.user_id = o.user_id AND i.order_id = o.id WHERE o.total > %d GROUP BY o.user_id ORDER BY q DESC, o.user_id LIMIT %d", r.IntN(200), 1+r.IntN(10)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT sku, COUNT(*), AVG(price), SUM(qty) FROM d_items WHERE qty >= %d GROUP BY sku HAVING COUNT(*) > %d ORDER BY sku", r.IntN(4), r.IntN(5)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT kind, SUM(amount), AVG(amount) FROM d_ledger WHERE account_id <= %d GROUP BY kind ORDER BY kind", 1+r.IntN(40)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT id, account_id, amount FROM d_ledger ORDER BY amount DESC, id LIMIT %d, %d", r.IntN(50), 1+r.IntN(40)), ordered: true}
		},
		func() scatterQuery {
			ids := []string{}
			for range 1 + r.IntN(6) {
				ids = append(ids, strconv.Itoa(1+r.IntN(120)))
			}
			return scatterQuery{sql: fmt.Sprintf("SELECT id, user_id, total FROM d_orders WHERE user_id IN (%s) ORDER BY total, id", strings.Join(ids, ", ")), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: "SELECT id, total FROM d_orders WHERE total BETWEEN ? AND ? ORDER BY total DESC, id LIMIT ?", args: []any{r.IntN(100), 100 + r.IntN(200), 1 + r.IntN(15)}, ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: "SELECT country, COUNT(*), MIN(name), MAX(born) FROM d_users WHERE user_id > ? GROUP BY country ORDER BY country", args: []any{r.IntN(100)}, ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT status, COUNT(DISTINCT user_id) AS u, MAX(total) FROM d_orders GROUP BY status HAVING u > %d OR MAX(total) BETWEEN %d AND %d ORDER BY status", r.IntN(30), r.IntN(100), 100+r.IntN(300)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT c.name, COUNT(*), SUM(o.total) FROM d_orders o JOIN currencies c ON c.code = o.currency WHERE o.created_at < '2026-%02d-15' GROUP BY c.name ORDER BY SUM(o.total) DESC, c.name", 1+r.IntN(12)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT user_id, MAX(created_at), COUNT(*) FROM d_orders WHERE total IS NOT NULL GROUP BY user_id ORDER BY COUNT(*) DESC, user_id LIMIT %d, %d", r.IntN(10), 1+r.IntN(10)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT MIN(name), MAX(name) FROM d_users WHERE country IS NULL OR user_id < %d", 1+r.IntN(120)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT id, note FROM d_orders WHERE note IS NOT NULL ORDER BY note DESC, id LIMIT %d", 1+r.IntN(30)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT DISTINCT qty FROM d_items WHERE price > %d ORDER BY qty DESC", r.IntN(60)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT kind, AVG(amount) AS a FROM d_ledger WHERE created_at >= '2026-%02d-01' GROUP BY kind HAVING a < %d ORDER BY a", 1+r.IntN(12), r.IntN(200)-100), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: "SELECT currency, COUNT(*) FROM d_orders WHERE user_id IN (?, ?, ?, ?) GROUP BY currency ORDER BY currency", args: []any{1 + r.IntN(120), 1 + r.IntN(120), 1 + r.IntN(120), 1 + r.IntN(120)}, ordered: true}
		},
		// Subqueries whose sharded tables are all pinned to one shard by the same key value.
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT status, COUNT(DISTINCT currency) AS c, COUNT(*), AVG(total) FROM d_orders WHERE total < %d GROUP BY status HAVING c >= %d ORDER BY c DESC, status LIMIT %d", r.IntN(400)-50, r.IntN(4), 1+r.IntN(4)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT COUNT(DISTINCT total), SUM(DISTINCT total), COUNT(*) FROM d_orders WHERE created_at < '2026-%02d-10'", 1+r.IntN(12)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT status, SUM(total) / COUNT(*) AS r, MAX(total) - MIN(total) FROM d_orders WHERE total < %d GROUP BY status HAVING r > %d ORDER BY r DESC, status", r.IntN(400)-50, r.IntN(150)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT account_id %% 5 AS m, ROUND(AVG(amount), %d), COUNT(*) * 2 FROM d_ledger WHERE amount > ? GROUP BY m ORDER BY SUM(amount) / COUNT(*), m", r.IntN(4)), args: []any{r.IntN(1000) - 500}, ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT name FROM d_users WHERE EXISTS (SELECT 1 FROM d_orders WHERE total > %d) AND user_id <= %d ORDER BY user_id", 200+r.IntN(200), r.IntN(20)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT user_id, name FROM d_users WHERE user_id IN (SELECT user_id FROM d_orders WHERE total > %d AND status = '%s') ORDER BY user_id", r.IntN(300), statuses[r.IntN(4)]), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: "SELECT country, COUNT(DISTINCT name), MIN(born) FROM d_users WHERE user_id > ? GROUP BY country ORDER BY country", args: []any{r.IntN(120)}, ordered: true}
		},
		func() scatterQuery {
			u := 1 + r.IntN(120)
			return scatterQuery{sql: fmt.Sprintf("SELECT id, total FROM d_orders WHERE user_id = %d AND id IN (SELECT order_id FROM d_items WHERE user_id = %d AND qty > %d) ORDER BY id", u, u, r.IntN(4)), ordered: true}
		},
		func() scatterQuery {
			u := 1 + r.IntN(120)
			return scatterQuery{sql: "SELECT o.id, (SELECT SUM(i.qty) FROM d_items i WHERE i.user_id = ? AND i.order_id = o.id) AS q FROM d_orders o WHERE o.user_id = ? ORDER BY o.id", args: []any{u, u}, ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT d.n, d.s FROM (SELECT COUNT(*) AS n, SUM(amount) AS s FROM d_ledger WHERE account_id = %d) d", 1+r.IntN(40)), ordered: true}
		},
		func() scatterQuery {
			u := 1 + r.IntN(120)
			return scatterQuery{sql: fmt.Sprintf("SELECT name FROM d_users WHERE user_id = %d AND EXISTS (SELECT 1 FROM d_orders WHERE user_id = %d AND status = '%s')", u, u, statuses[r.IntN(4)]), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: "SELECT id FROM d_orders WHERE user_id = ? AND currency IN (SELECT code FROM currencies WHERE rate > 1) ORDER BY id", args: []any{1 + r.IntN(120)}, ordered: true}
		},
	}
	templates = append(templates, subqueryCorpus(r)...) // scatter_subquery_test.go
	for len(out) < 300 {
		out = append(out, templates[r.IntN(len(templates))]())
	}
	return append(out, scatterAggCorpus(seed)...) // scatter_agg_test.go
}

// TestScatter is the differential test of distributed queries: the same generated data in
// one unsharded MariaDB database and, through the proxy, in four shards; every query of the
// corpus must give the same result both ways, with the text and the binary protocol.
func TestScatter(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SHARDPROXY_SCATTER_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (rerun with SHARDPROXY_SCATTER_SEED=%d)", seed, seed)
	se := newShardedEnv(t, scatterTables...)
	se.servers[0].Exec(t, "CREATE DATABASE ref")
	ref := se.servers[0].DB(t, "ref")
	db := se.proxy.open(t, appUser, appPass, "shop")
	for _, ddl := range scatterDDL {
		mustExec(t, ref, ddl)
		mustExec(t, db, ddl)
	}
	loadScatterData(t, ref, db, se.shards[:], scatterData(seed))
	// The binary protocol twice: a statement prepared for each query, and one prepared once
	// per text and executed with every set of values of that text (scatter_prepared_test.go).
	for _, mode := range []string{"interpolateParams=true", "interpolateParams=false", "prepared once"} {
		t.Run(mode, func(t *testing.T) {
			var via querier = se.proxy.open(t, appUser, appPass, "shop", strings.Replace(mode, "prepared once", "interpolateParams=false", 1), "parseTime=true")
			if mode == "prepared once" {
				once := newPreparedOnce(via.(*sql.DB))
				defer once.Close()
				via = once
			}
			failures := 0
			for i, q := range scatterCorpus(seed) {
				want, err := tryQuery(ref, q.sql, q.args...)
				if err != nil {
					t.Fatalf("query %d on the reference: %q: %v", i, q.sql, err)
				}
				got, err := tryQuery(via, q.sql, q.args...)
				if err != nil {
					t.Errorf("query %d through the proxy (seed %d): %q %v: %v", i, seed, q.sql, q.args, err)
					failures++
				} else if diff := diffResults(want, got, q.ordered); diff != "" {
					t.Errorf("query %d (seed %d): %q %v: %s", i, seed, q.sql, q.args, diff)
					failures++
				}
				if failures > 10 {
					t.Fatal("too many failures")
				}
			}
		})
	}
	t.Run("AggWire", func(t *testing.T) { scatterAggWire(t, se.servers[0], se.proxy.Addr) })
	t.Run("Explain", func(t *testing.T) {
		res := query(t, db, "EXPLAIN SHARDS SELECT status, COUNT(*) FROM d_orders GROUP BY status ORDER BY 2 DESC LIMIT 3")
		if len(res.Rows) != 4+4 || text(res.Rows[0][0]) != "route" || text(res.Rows[4][0]) != "merge" {
			t.Fatalf("EXPLAIN SHARDS: %v", res.Rows)
		}
		var steps []string
		for _, r := range res.Rows[4:] {
			steps = append(steps, text(r[2]))
		}
		for _, want := range []string{"merge partial aggregates", "sort merged rows by COUNT(1) DESC", "limit offset 0 count 3"} {
			if !strings.Contains(strings.Join(steps, "\n"), want) {
				t.Errorf("EXPLAIN SHARDS merge steps %q lack %q", steps, want)
			}
		}
		for i, r := range res.Rows[:4] {
			if text(r[1]) != fmt.Sprintf("s%d", i) || !strings.Contains(text(r[2]), "GROUP BY `status` ORDER BY 1") {
				t.Errorf("route row %d: %v", i, r)
			}
		}
	})
	t.Run("ColumnMetadata", func(t *testing.T) {
		// Column definitions name the logical table, never a slot's physical table, whether
		// one shard or all of them answer.
		// (A shard holding several slot tables answers a UNION ALL of them, whose columns
		// MariaDB describes without schema and table.)
		raw := connectRaw(t, se.proxy.Addr, appUser, appPass, "shop")
		for _, c := range []struct {
			q     string
			union bool
		}{
			{"SELECT id, amount FROM d_ledger WHERE account_id = 3", false},
			{"SELECT id FROM d_ledger WHERE account_id IN (3, 4)", false},
			{"SELECT id, amount FROM d_ledger ORDER BY id LIMIT 2", true},
			{"SELECT o.id, o.total FROM d_orders o ORDER BY o.id LIMIT 2", false},
		} {
			res, err := raw.query(c.q)
			if err != nil {
				t.Fatalf("%s: %v", c.q, err)
			}
			for _, d := range res[0].Columns {
				f := columnDefFields(d)
				want := [3]string{"shop", "d_ledger", "d_ledger"}
				switch {
				case c.union:
					want = [3]string{"", "", ""}
				case strings.Contains(c.q, "d_orders"):
					want = [3]string{"shop", "o", "d_orders"}
				}
				if [3]string{f[1], f[2], f[3]} != want {
					t.Errorf("%s: column %s has schema %q, table %q, org_table %q; want %q", c.q, f[4], f[1], f[2], f[3], want)
				}
			}
		}
	})
	t.Run("SubqueryErrors", func(t *testing.T) { testScatterSubqueryErrors(t, ref, db) })
	t.Run("SubqueryWrites", func(t *testing.T) {
		testScatterSubqueryWrites(t, ref, db, se.proxy.open(t, appUser, appPass, "shop", "interpolateParams=false", "parseTime=true"))
	})
	t.Run("Writes", func(t *testing.T) {
		// UPDATE and DELETE without the shard key run on every shard (atomically); affected
		// rows add up to what the unsharded database reports, and the tables stay equal.
		for _, w := range []string{
			"UPDATE d_orders SET note = 'audited' WHERE total < 10",
			"DELETE FROM d_items WHERE qty = 0",
			"UPDATE d_ledger SET kind = 'fee' WHERE amount BETWEEN -5 AND 5",
			"DELETE FROM d_orders",
		} {
			want, err := ref.Exec(w)
			if err != nil {
				t.Fatalf("%s on the reference: %v", w, err)
			}
			got, err := db.Exec(w)
			if err != nil {
				t.Fatalf("%s through the proxy: %v", w, err)
			}
			wn, _ := want.RowsAffected()
			gn, _ := got.RowsAffected()
			if wn != gn {
				t.Errorf("%s: %d rows affected through the proxy, %d on one database", w, gn, wn)
			}
		}
		for _, q := range []string{"SELECT * FROM d_orders", "SELECT * FROM d_items", "SELECT * FROM d_ledger"} {
			if diff := diffResults(query(t, ref, q), query(t, db, q), false); diff != "" {
				t.Errorf("%s after the writes: %s", q, diff)
			}
		}
		// full_table_writes: forbid on d_ledger: no WHERE, no write, on any shard.
		_, err := db.Exec("DELETE FROM d_ledger")
		wantError(t, err, 1175, "HY000")
		if n := queryString(t, db, "SELECT COUNT(*) FROM d_ledger"); n != "400" {
			t.Errorf("d_ledger holds %s rows after a refused full-table DELETE, want 400", n)
		}
	})
	t.Run("Refusals", func(t *testing.T) {
		for _, q := range []string{
			"SELECT o.id FROM d_orders o JOIN d_items i ON o.id = i.order_id",
			"SELECT u.name FROM d_users u WHERE EXISTS (SELECT 1 FROM d_orders o WHERE o.user_id = u.user_id AND o.total > 100)",
			"SELECT status, MD5(COUNT(*)) FROM d_orders GROUP BY status",
			"SELECT status, GROUP_CONCAT(id) FROM d_orders GROUP BY status",
		} {
			_, err := tryQuery(db, q)
			wantError(t, err, 1235, "42000")
		}
		if got := queryString(t, db, "SELECT 1"); got != "1" {
			t.Fatalf("connection unusable after refusals: %q", got)
		}
	})
}

// loadScatterData inserts rows into the reference database directly and into the shards
// through the proxy, one multi-row INSERT per table and shard slot (broadcast rows go to
// each shard directly).
func loadScatterData(t *testing.T, ref, via *sql.DB, shards []*sql.DB, rows []scatterRow) {
	t.Helper()
	type batch struct {
		table string
		slot  int
	}
	batches := map[batch][]string{}
	var order []batch
	for _, r := range rows {
		b := batch{table: r.table, slot: -1}
		switch {
		case r.key < 0:
		case r.table == "d_ledger":
			b.slot = int(r.key % 8)
		default:
			slot, err := rules.HashFunc{N: 4}.Slot(rules.IntValue(r.key))
			if err != nil {
				t.Fatal(err)
			}
			b.slot = slot
		}
		if batches[b] == nil {
			order = append(order, b)
		}
		batches[b] = append(batches[b], r.vals)
	}
	for _, b := range order {
		vals := batches[b]
		for len(vals) > 0 {
			n := min(len(vals), 200)
			stmt := "INSERT INTO " + b.table + " " + scatterColumns[b.table] + " VALUES " + strings.Join(vals[:n], ", ")
			mustExec(t, ref, stmt)
			if b.table == "currencies" {
				// a broadcast table: the same copy on every shard
				for _, sh := range shards {
					mustExec(t, sh, stmt)
				}
			} else {
				mustExec(t, via, stmt)
			}
			vals = vals[n:]
		}
	}
}

// diffResults compares two results: column names and types, then rows (in order, or as
// multisets). It returns "" when they are the same.
func diffResults(want, got result, ordered bool) string {
	if !slices.Equal(want.Columns, got.Columns) {
		return fmt.Sprintf("columns %q, want %q", got.Columns, want.Columns)
	}
	if !slices.Equal(want.Types, got.Types) {
		return fmt.Sprintf("column types %q, want %q", got.Types, want.Types)
	}
	w, g := rowStrings(want.Rows), rowStrings(got.Rows)
	if !ordered {
		slices.Sort(w)
		slices.Sort(g)
	}
	if !slices.Equal(w, g) {
		for i := range min(len(w), len(g)) {
			if w[i] != g[i] {
				return fmt.Sprintf("%d rows, want %d; first difference at row %d: %s, want %s", len(g), len(w), i, g[i], w[i])
			}
		}
		return fmt.Sprintf("%d rows, want %d", len(g), len(w))
	}
	return ""
}

func rowStrings(rows [][]any) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		parts := make([]string, len(r))
		for j, v := range r {
			parts[j] = text(v)
		}
		out[i] = strings.Join(parts, " | ")
	}
	return out
}

// TestScatterMemory streams 1,000,000 rows from four shards through the proxy, unordered and
// through the k-way ORDER BY merge, and checks the proxy's peak RSS stays under 64 MB: rows
// are relayed as they are merged, never gathered.
func TestScatterMemory(t *testing.T) {
	se := newShardedEnv(t)
	db := se.proxy.open(t, appUser, appPass, "shop")
	mustExec(t, db, "CREATE TABLE orders (order_id BIGINT NOT NULL, user_id BIGINT NOT NULL, total DECIMAL(10,2), note VARCHAR(100), PRIMARY KEY (user_id, order_id))")
	const perShard = 250_000
	for i, sh := range se.shards {
		// Loaded on each shard directly (placement does not matter for a full scan): rows
		// i, i+4, i+8, ... with a 60-byte note.
		mustExec(t, sh, fmt.Sprintf(`INSERT INTO orders (order_id, user_id, total, note)
			WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < 999)
			SELECT (a.k * 1000 + b.k) * 4 + %d, (a.k * 1000 + b.k) * 4 + %d, b.k / 10, REPEAT('x', 60)
			FROM n a JOIN n b WHERE a.k < %d`, i, i, perShard/1000))
	}
	pid := se.proxy.cmd.Process.Pid
	for _, q := range []string{
		"SELECT order_id, user_id, total, note FROM orders",
		"SELECT order_id, user_id, total, note FROM orders ORDER BY order_id",
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		n, last, sorted := 0, int64(-1), true
		for rows.Next() {
			var id, user int64
			var total, note string
			if err := rows.Scan(&id, &user, &total, &note); err != nil {
				t.Fatal(err)
			}
			if id < last {
				sorted = false
			}
			last = id
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		rows.Close()
		if n != 4*perShard {
			t.Errorf("%s: %d rows, want %d", q, n, 4*perShard)
		}
		if strings.Contains(q, "ORDER BY") && !sorted {
			t.Errorf("%s: rows out of order", q)
		}
		hwm := procStatusKB(t, pid, "VmHWM")
		t.Logf("%s: %d rows; proxy peak RSS so far %.1f MB", q, n, float64(hwm)/1024)
		if hwm > 64*1024 {
			t.Errorf("proxy peak RSS %.1f MB after %q; want under 64 MB", float64(hwm)/1024, q)
		}
	}
}

// procStatusKB reads a kB field of /proc/<pid>/status.
func procStatusKB(t *testing.T, pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// columnDefFields returns the six strings of a column definition: catalog, schema, table,
// org_table, name, org_name.
func columnDefFields(p []byte) [6]string {
	var f [6]string
	for i := range f {
		n, m := lenencInt(p)
		if m == 0 || int(n) > len(p)-m {
			return f
		}
		f[i], p = string(p[m:m+int(n)]), p[m+int(n):]
	}
	return f
}
