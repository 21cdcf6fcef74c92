package integration

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
)

// The differential test's shapes of aggregates merged across shards beyond the plain five:
// DISTINCT aggregates over several argument lists in one query (scatter_distinct.go's
// branches) and functions over aggregates (aggexpr.go's evaluator). They join TestScatter's
// corpus; scatterAggWire compares a sample of them byte for byte on the wire.

// scatterAggFixed are the hand-written shapes.
var scatterAggFixed = []scatterQuery{
	{sql: "SELECT COUNT(DISTINCT status), COUNT(DISTINCT currency) FROM d_orders", ordered: true},
	{sql: "SELECT COUNT(DISTINCT status), COUNT(DISTINCT currency), COUNT(*), SUM(total), AVG(total), MIN(note), MAX(created_at) FROM d_orders", ordered: true},
	{sql: "SELECT COUNT(DISTINCT status), SUM(DISTINCT total), AVG(DISTINCT total), COUNT(DISTINCT user_id), COUNT(DISTINCT currency, status) FROM d_orders", ordered: true},
	{sql: "SELECT COUNT(DISTINCT status), COUNT(DISTINCT currency), COUNT(*) FROM d_orders WHERE total > 1000000", ordered: true},
	{sql: "SELECT currency, COUNT(DISTINCT status), COUNT(DISTINCT note), COUNT(*), SUM(total) FROM d_orders GROUP BY currency", ordered: false},
	{sql: "SELECT status, COUNT(DISTINCT user_id) AS u, COUNT(DISTINCT currency) AS c, AVG(total) FROM d_orders GROUP BY status HAVING COUNT(DISTINCT currency) > 2 ORDER BY u DESC, status", ordered: true},
	{sql: "SELECT country, COUNT(DISTINCT name), COUNT(DISTINCT born), COUNT(DISTINCT YEAR(born)), MIN(name) FROM d_users GROUP BY country ORDER BY country", ordered: true},
	{sql: "SELECT sku, COUNT(DISTINCT qty), SUM(DISTINCT price), AVG(DISTINCT qty), COUNT(DISTINCT order_id) FROM d_items GROUP BY sku ORDER BY sku", ordered: true},
	{sql: "SELECT kind, COUNT(DISTINCT account_id), COUNT(DISTINCT amount), SUM(amount) FROM d_ledger GROUP BY kind ORDER BY kind", ordered: true},
	{sql: "SELECT COUNT(DISTINCT status) + COUNT(DISTINCT currency), COUNT(DISTINCT note) * 2 FROM d_orders", ordered: true},
	{sql: "SELECT o.currency, COUNT(DISTINCT i.sku), COUNT(DISTINCT o.status), SUM(i.qty) FROM d_orders o JOIN d_items i ON i.user_id = o.user_id AND i.order_id = o.id GROUP BY o.currency ORDER BY o.currency", ordered: true},
	{sql: "SELECT status, COUNT(DISTINCT currency), COUNT(DISTINCT note) FROM d_orders GROUP BY status ORDER BY COUNT(DISTINCT note) DESC, status LIMIT 3", ordered: true},
	{sql: "SELECT CONCAT('n=', COUNT(*)), CONCAT(status, ':', COUNT(*), '/', SUM(total)), CONCAT_WS('-', status, MAX(note), COUNT(*)) FROM d_orders GROUP BY status", ordered: false},
	{sql: "SELECT status, CONCAT(AVG(total)), CONCAT(SUM(total) / COUNT(*)), CONCAT(MIN(created_at)), CONCAT(ROUND(AVG(total), 1)) FROM d_orders GROUP BY status", ordered: false},
	{sql: "SELECT IFNULL(SUM(total), 0), IFNULL(MAX(note), 'none'), COALESCE(MIN(total), MAX(total), 0), IF(COUNT(*) > 100, 'many', 'few') FROM d_orders", ordered: true},
	{sql: "SELECT currency, CASE WHEN COUNT(*) > 30 THEN 'many' WHEN COUNT(*) > 5 THEN 'some' ELSE 'few' END AS c, CASE COUNT(DISTINCT status) WHEN 4 THEN 'all' ELSE COUNT(DISTINCT status) END FROM d_orders GROUP BY currency", ordered: false},
	{sql: "SELECT sku, GREATEST(MAX(qty), 3), LEAST(MIN(price), 10), GREATEST(SUM(qty), AVG(price)), LEAST(COUNT(*), 2.5) FROM d_items GROUP BY sku", ordered: false},
	{sql: "SELECT status, IF(SUM(total) IS NULL, -1, SUM(total) * 2), IF(COUNT(*) % 2 = 0, AVG(total), NULL), IFNULL(AVG(total), 'n/a') FROM d_orders GROUP BY status", ordered: false},
	{sql: "SELECT status, LENGTH(CONCAT(SUM(total))), CHAR_LENGTH(MAX(note)), UPPER(MAX(note)), LOWER(CONCAT('X', COUNT(*))), LPAD(COUNT(*), 5, '0'), RPAD(MIN(currency), 8, '.'), REPEAT(COUNT(*), 2) FROM d_orders GROUP BY status ORDER BY status", ordered: true},
	{sql: "SELECT status, LEFT(CONCAT(SUM(total)), 3), RIGHT(MAX(note), 2), SUBSTRING(CONCAT('#', COUNT(*)), 2), REPLACE(CONCAT(AVG(total)), '.', ','), REVERSE(COUNT(*)), LTRIM(CONCAT(' ', MIN(note))) FROM d_orders GROUP BY status ORDER BY status", ordered: true},
	{sql: "SELECT kind, CONCAT(kind, '=', SUM(amount)), IF(SUM(amount) > 0, 'credit', 'debit') FROM d_ledger GROUP BY kind ORDER BY kind", ordered: true},
	{sql: "SELECT sku, SIGN(SUM(qty) - 10), MOD(SUM(qty), 4), POW(COUNT(*), 2), SQRT(COUNT(*)), SUM(qty) / 0, FORMAT(SUM(price), 1) FROM d_items GROUP BY sku", ordered: false},
	{sql: "SELECT status, COUNT(*) FROM d_orders GROUP BY status HAVING CONCAT('s', COUNT(*)) <> 's0' AND IF(SUM(total) > 0, 1, 0) = 1 ORDER BY IFNULL(MAX(total), 0) DESC, status", ordered: true},
	{sql: "SELECT currency, CONCAT(COUNT(DISTINCT status), '/', COUNT(DISTINCT note)), COALESCE(SUM(DISTINCT total), 0) FROM d_orders GROUP BY currency", ordered: false},
	{sql: "SELECT CONCAT('n=', COUNT(*)), IFNULL(SUM(total), 0), CASE WHEN COUNT(*) > 1 THEN 'many' ELSE 'one' END FROM d_orders WHERE total > 1000000", ordered: true},
	{sql: "SELECT status, CONCAT(MAX(note), '-', COUNT(*)) AS c FROM d_orders GROUP BY status ORDER BY c DESC, status", ordered: true},
	{sql: "SELECT currency, LEAST(MAX(note), 'GIFT'), GREATEST(MIN(status), 'PAID') FROM d_orders GROUP BY currency HAVING LEAST(MAX(note), 'GIFT') = 'gift' ORDER BY currency", ordered: true},
	{sql: "SELECT status, COUNT(*) FROM d_orders GROUP BY status HAVING CASE WHEN status = 'paid' THEN 1 ELSE COUNT(*) > 80 END ORDER BY status", ordered: true},
	{sql: "SELECT user_id % 3 AS m, CONCAT(user_id % 3, ':', COUNT(DISTINCT status), ':', COUNT(DISTINCT currency)) FROM d_orders GROUP BY m ORDER BY m", ordered: true},
	{sql: "SELECT status, COUNT(*) FROM d_orders GROUP BY status ORDER BY CONCAT(COUNT(*), 'x'), status", ordered: true},
	{sql: "SELECT UPPER(status) AS s, COUNT(*), COUNT(DISTINCT LOWER(note)) FROM d_orders GROUP BY UPPER(status) ORDER BY s", ordered: true},
	{sql: "SELECT CONCAT(currency, '/', status) AS cs, COUNT(DISTINCT note), COUNT(DISTINCT LEFT(status, 1)) FROM d_orders GROUP BY CONCAT(currency, '/', status) ORDER BY cs", ordered: true},
	{sql: "SELECT status, CONCAT(COUNT(*), 'x'), IF(COUNT(*) > 10, 'y', 'n') FROM d_orders GROUP BY status HAVING IF(COUNT(*) > ?, 'y', 'n') = ? ORDER BY status", args: []any{10, "y"}, ordered: true},
}

// scatterAggCorpus is the fixed shapes plus, from seed, random instances of templates.
func scatterAggCorpus(seed uint64) []scatterQuery {
	r := rand.New(rand.NewPCG(seed, 13))
	cols := []string{"status", "currency", "note", "total", "user_id", "DATE(created_at)"}
	// Not note: 'gift' and 'Gift' are one group, which MariaDB names by either.
	groups := []string{"", "status", "currency"}
	funcs := []func() string{
		func() string { return fmt.Sprintf("CONCAT('%d:', COUNT(*), '-', MAX(total))", r.IntN(9)) },
		func() string { return fmt.Sprintf("IFNULL(SUM(total), %d)", r.IntN(5)) },
		func() string {
			return fmt.Sprintf("CASE WHEN COUNT(*) > %d THEN 'many' WHEN MIN(total) < %d THEN MIN(total) ELSE 'other' END", r.IntN(30), r.IntN(100))
		},
		func() string {
			return fmt.Sprintf("IF(AVG(total) > %d, ROUND(AVG(total), %d), COUNT(*))", r.IntN(200), r.IntN(3))
		},
		func() string { return fmt.Sprintf("GREATEST(COUNT(*), %d.5)", r.IntN(20)) },
		func() string { return fmt.Sprintf("LEAST(MAX(total), SUM(total) / %d)", 1+r.IntN(9)) },
		func() string { return fmt.Sprintf("COALESCE(MAX(note), MIN(status), '%d')", r.IntN(9)) },
		func() string { return fmt.Sprintf("LPAD(COUNT(DISTINCT currency), %d, '*')", 1+r.IntN(4)) },
	}
	var out []scatterQuery
	out = append(out, scatterAggFixed...)
	for range 40 {
		g := groups[r.IntN(len(groups))]
		a, b := cols[r.IntN(len(cols))], cols[r.IntN(len(cols))]
		sel := fmt.Sprintf("COUNT(DISTINCT %s), COUNT(DISTINCT %s), %s, COUNT(*)", a, b, funcs[r.IntN(len(funcs))]())
		where := fmt.Sprintf("total < %d", r.IntN(400)-50)
		if r.IntN(2) == 0 {
			sel = fmt.Sprintf("SUM(DISTINCT total), AVG(DISTINCT total), COUNT(DISTINCT %s), %s", a, funcs[r.IntN(len(funcs))]())
		}
		q := scatterQuery{sql: fmt.Sprintf("SELECT %s FROM d_orders WHERE %s", sel, where), ordered: true}
		if g != "" {
			q.sql = fmt.Sprintf("SELECT %s, %s FROM d_orders WHERE %s GROUP BY %s ORDER BY %s", g, sel, where, g, g)
			if r.IntN(3) == 0 {
				q.sql = fmt.Sprintf("SELECT %s, %s FROM d_orders WHERE %s GROUP BY %s HAVING COUNT(DISTINCT %s) >= %d ORDER BY %s DESC", g, sel, where, g, b, r.IntN(3), g)
			}
		}
		out = append(out, q)
	}
	return out
}

// scatterAggWire runs the fixed shapes without parameters on the reference server and
// through the proxy with a raw client and compares what the wire carries: every column
// definition (but the schema, ref against shop) and, for ordered results, every row packet.
// It runs them again under ONLY_FULL_GROUP_BY: what the shards are sent must pass it
// wherever the client's statement does.
func scatterAggWire(t *testing.T, ref *mariadbtest.Server, proxyAddr string) {
	refc := connectRaw(t, ref.Addr(), ref.User, ref.Password, "ref")
	via := connectRaw(t, proxyAddr, appUser, appPass, "shop")
	scatterAggWireRun(t, refc, via, false)
	for _, c := range []*rawConn{refc, via} {
		if _, err := c.query("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ONLY_FULL_GROUP_BY')"); err != nil {
			t.Fatal(err)
		}
	}
	scatterAggWireRun(t, refc, via, true)
}

func scatterAggWireRun(t *testing.T, refc, via *rawConn, strict bool) {
	for _, q := range scatterAggFixed {
		if len(q.args) > 0 || strings.Contains(q.sql, "d_ledger") {
			continue // d_ledger: shards answer a UNION ALL of slot tables, described without tables
		}
		want, err := refc.query(q.sql)
		if err != nil && strict {
			continue // the client's statement itself does not pass ONLY_FULL_GROUP_BY
		}
		if err != nil {
			t.Fatalf("%s on the reference: %v", q.sql, err)
		}
		got, err := via.query(q.sql)
		if err != nil {
			t.Errorf("%s through the proxy: %v", q.sql, err)
			continue
		}
		w, g := want[0], got[0]
		if len(w.Columns) != len(g.Columns) {
			t.Errorf("%s: %d columns, want %d", q.sql, len(g.Columns), len(w.Columns))
			continue
		}
		for i := range w.Columns {
			if !bytes.Equal(comparableDef(w.Columns[i]), comparableDef(g.Columns[i])) {
				t.Errorf("%s: column %d is %q, want %q", q.sql, i, g.Columns[i], w.Columns[i])
			}
		}
		if q.ordered && fmt.Sprint(w.Rows) != fmt.Sprint(g.Rows) {
			t.Errorf("%s: rows %q, want %q", q.sql, g.Rows, w.Rows)
		}
	}
}

// comparableDef is a column definition with its schema (the second string) cut out and
// the BINARY flag of a number cleared: MariaDB drops that flag from aggregates when it
// sorts the groups by one (ORDER BY COUNT(*)), which the shards, sorting by the group keys,
// do not.
func comparableDef(p []byte) []byte {
	n, m := lenencInt(p)
	if m == 0 || int(n) > len(p)-m {
		return p
	}
	rest := p[m+int(n):]
	s, k := lenencInt(rest)
	if k == 0 || int(s) > len(rest)-k {
		return p
	}
	out := append(append([]byte{}, p[:m+int(n)]...), rest[k+int(s):]...)
	// The fixed part ends the packet: 0x0c, charset(2), length(4), type, flags(2), decimals, 0(2).
	if len(out) >= 13 {
		fixed := out[len(out)-13:]
		switch fixed[7] {
		case 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x08, 0x09, 0xf6: // decimal, integers, float, double, newdecimal
			fixed[8] &^= 0x80
		}
	}
	return out
}
