package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// subqueryCorpus adds to TestScatter's corpus the subqueries over sharded tables on several
// shards that the proxy runs first and binds: scalar subqueries in the WHERE, the select
// list and HAVING (values of every type the tables hold, no row, keys routed by the value),
// and subqueries with ? parameters inside and outside them (in the binary protocol, bound
// at each execution).
func subqueryCorpus(r *rand.Rand) []func() scatterQuery {
	statuses := []string{"new", "paid", "shipped", "cancelled"}
	countries := []string{"DE", "FR", "US", "JP"}
	return []func() scatterQuery{
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT id, total FROM d_orders WHERE total > (SELECT AVG(total) FROM d_orders WHERE status = '%s') ORDER BY id", statuses[r.IntN(4)]), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT id, (SELECT COUNT(*) FROM d_items WHERE qty > %d), (SELECT MAX(total) FROM d_orders) AS m, (SELECT AVG(price) FROM d_items) FROM d_orders WHERE user_id = %d ORDER BY id", r.IntN(4), 1+r.IntN(120)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT status, COUNT(*) FROM d_orders GROUP BY status HAVING COUNT(*) > (SELECT COUNT(*) FROM d_users WHERE country = '%s') ORDER BY status", countries[r.IntN(4)]), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT name, user_id FROM d_users WHERE name > (SELECT MAX(name) FROM d_users WHERE user_id < %d) ORDER BY user_id", 2+r.IntN(100)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT id, created_at FROM d_orders WHERE created_at >= (SELECT MAX(created_at) FROM d_orders WHERE user_id < %d) ORDER BY id", 2+r.IntN(100)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT user_id, born, (SELECT MIN(born) FROM d_users WHERE country = '%s') AS b FROM d_users WHERE born <= (SELECT MIN(born) FROM d_users WHERE user_id > %d) ORDER BY user_id", countries[r.IntN(4)], r.IntN(100)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT COUNT(*), (SELECT total FROM d_orders WHERE id = -%d) AS none FROM d_orders WHERE total > (SELECT total FROM d_orders WHERE id = -1)", 1+r.IntN(9)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT id, status FROM d_orders WHERE user_id = (SELECT MAX(user_id) FROM d_users WHERE country = '%s') ORDER BY id", countries[r.IntN(4)]), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT id, note FROM d_orders WHERE note = (SELECT MIN(note) FROM d_orders WHERE user_id > %d AND note <> '') ORDER BY id", r.IntN(100)), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: "SELECT id, total FROM d_orders WHERE total > (SELECT AVG(total) FROM d_orders WHERE status = ?) AND user_id > ? ORDER BY id", args: []any{statuses[r.IntN(4)], r.IntN(120)}, ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: "SELECT COUNT(*), SUM(total) FROM d_orders WHERE user_id IN (SELECT user_id FROM d_users WHERE country = ?)", args: []any{countries[r.IntN(4)]}, ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: "SELECT user_id, (SELECT SUM(qty) FROM d_items WHERE qty > ?) AS q FROM d_users WHERE user_id = ? AND EXISTS (SELECT 1 FROM d_orders WHERE total > ?)", args: []any{r.IntN(4), 1 + r.IntN(120), r.IntN(400)}, ordered: true}
		},
		func() scatterQuery {
			// A correlated scalar pinned to the statement's shard stays; the IN is bound.
			u := 1 + r.IntN(120)
			return scatterQuery{sql: fmt.Sprintf("SELECT o.id, (SELECT SUM(i.qty) FROM d_items i WHERE i.user_id = %d AND i.order_id = o.id) AS q FROM d_orders o WHERE o.user_id = %d AND o.currency IN (SELECT currency FROM d_orders WHERE total > %d) ORDER BY o.id", u, u, r.IntN(300)), ordered: true}
		},
		func() scatterQuery {
			// Likewise a correlated IN pinned to the statement's shard.
			u := 1 + r.IntN(120)
			return scatterQuery{sql: fmt.Sprintf("SELECT o.id FROM d_orders o WHERE o.user_id = %d AND o.id IN (SELECT i.order_id FROM d_items i WHERE i.user_id = %d AND i.qty > o.id %% 3) AND EXISTS (SELECT 1 FROM d_users WHERE country = '%s') ORDER BY o.id", u, u, countries[r.IntN(4)]), ordered: true}
		},
		func() scatterQuery {
			return scatterQuery{sql: fmt.Sprintf("SELECT account_id, amount FROM d_ledger WHERE amount < (SELECT MIN(amount) FROM d_ledger WHERE kind = 'fee') + %d ORDER BY id", r.IntN(300)), ordered: true}
		},
	}
}

// testScatterSubqueryErrors checks that a scalar subquery answering several rows fails as on
// one MariaDB (1242) where MariaDB evaluates it, and not where no row needs its value; that
// IN subqueries with LIMIT are refused as MariaDB refuses them; that correlated subqueries
// pinned to the statement's shard still run there while the others are bound; and that a
// correlated subquery over several shards is refused, saying so.
func testScatterSubqueryErrors(t *testing.T, ref, via *sql.DB) {
	for _, q := range []string{
		"SELECT id FROM d_orders WHERE total = (SELECT total FROM d_orders WHERE user_id IN (1, 2, 3, 4, 5)) ORDER BY id",
		"SELECT id, (SELECT user_id FROM d_users) FROM d_orders WHERE user_id = 9 ORDER BY id",
		"SELECT id FROM d_orders WHERE id < 0 AND total = (SELECT total FROM d_orders) ORDER BY id",
		"SELECT id FROM d_orders WHERE user_id IN (SELECT user_id FROM d_users LIMIT 3)",
		"SELECT (SELECT user_id, name FROM d_users WHERE user_id = 1)",
		// Correlated subqueries pinned to the statement's shard stay; the others are bound.
		"SELECT o.id, (SELECT SUM(i.qty) FROM d_items i WHERE i.user_id = 7 AND i.order_id = o.id) AS q FROM d_orders o WHERE o.user_id = 7 AND o.currency IN (SELECT currency FROM d_orders WHERE total > 100) ORDER BY o.id",
		"SELECT o.id FROM d_orders o WHERE o.user_id = 9 AND o.id IN (SELECT i.order_id FROM d_items i WHERE i.user_id = 9 AND i.qty > o.id % 3) AND EXISTS (SELECT 1 FROM d_users WHERE country = 'DE') ORDER BY o.id",
	} {
		want, werr := tryQuery(ref, q)
		got, gerr := tryQuery(via, q)
		switch {
		case werr != nil:
			var me *mysql.MySQLError
			if !errors.As(werr, &me) {
				t.Fatalf("%s on the reference: %v", q, werr)
			}
			wantError(t, gerr, me.Number, string(me.SQLState[:]))
		case gerr != nil:
			t.Errorf("%s: %v, want %d rows", q, gerr, len(want.Rows))
		default:
			if diff := diffResults(want, got, true); diff != "" {
				t.Errorf("%s: %s", q, diff)
			}
		}
	}
	// A correlated subquery over several shards is refused, naming why.
	_, err := tryQuery(via, "SELECT id FROM d_orders o WHERE total > (SELECT AVG(total) FROM d_orders x WHERE x.currency = o.currency) AND id IN (SELECT order_id FROM d_items)")
	wantError(t, err, 1235, "42000")
	if err != nil && !strings.Contains(err.Error(), "correlated subquery") {
		t.Errorf("the refusal does not say the subquery is correlated: %v", err)
	}
}

// testScatterSubqueryWrites runs UPDATE and DELETE with subqueries over several shards, and
// INSERT ... SELECT over sharded tables, through the proxy and on one database, as plain queries, as prepared statements and in a
// transaction whose subquery must see its own earlier write: affected rows and the tables'
// contents must be the same both ways.
func testScatterSubqueryWrites(t *testing.T, ref, db, binary *sql.DB) {
	writes := []struct {
		sql    string
		args   []any
		binary bool
	}{
		{sql: "UPDATE d_orders SET note = 'above' WHERE total > (SELECT AVG(total) FROM d_orders)"},
		{sql: "UPDATE d_orders SET note = 'de' WHERE user_id IN (SELECT user_id FROM d_users WHERE country = 'DE')"},
		{sql: "DELETE FROM d_items WHERE order_id IN (SELECT id FROM d_orders WHERE status = 'cancelled')"},
		{sql: "UPDATE d_orders SET total = (SELECT MAX(price) FROM d_items), created_at = (SELECT MAX(created_at) FROM d_orders) WHERE user_id = 7"},
		{sql: "UPDATE d_orders SET note = (SELECT MIN(name) FROM d_users WHERE country = 'FR') WHERE user_id IN (8, 9, 10)"},
		{sql: "DELETE FROM d_orders WHERE total < (SELECT AVG(total) FROM d_orders) - 100 AND EXISTS (SELECT 1 FROM d_users WHERE country = 'JP')"},
		{sql: "UPDATE d_orders SET note = ? WHERE total > (SELECT AVG(total) FROM d_orders WHERE status = ?)", args: []any{"prep", "paid"}, binary: true},
		{sql: "DELETE FROM d_items WHERE qty = ? AND user_id IN (SELECT user_id FROM d_users WHERE country = ?)", args: []any{1, "US"}, binary: true},
		// INSERT ... SELECT: the rows read (from the table written, too) inserted by slot.
		{sql: "INSERT INTO d_items (id, order_id, user_id, sku, qty, price) SELECT id + 100000, order_id, user_id, sku, qty + 1, price FROM d_items WHERE qty = 3"},
		{sql: "INSERT INTO d_orders (id, user_id, status, total, currency, created_at, note) SELECT id + 100000, user_id, status, total * 2, currency, created_at, CONCAT(note, '!') FROM d_orders WHERE status = 'paid' AND total > 100"},
		{sql: "INSERT INTO d_orders (id, user_id) SELECT id, user_id FROM d_orders WHERE id < 0"},
		{sql: "INSERT INTO d_users SELECT user_id + 1000, name, country, born FROM d_users WHERE country = 'JP'"},
		{sql: "INSERT INTO d_orders (id, user_id, note) SELECT id, user_id, 'dup' FROM d_orders WHERE total > 300 ON DUPLICATE KEY UPDATE note = VALUES(note)"},
		{sql: "INSERT INTO d_items (id, order_id, user_id, sku, qty, price) SELECT id + 200000, order_id, user_id, sku, qty, price FROM d_items WHERE sku = ?", args: []any{"sku-3"}, binary: true},
		{sql: "INSERT INTO d_orders (id, user_id, note) SELECT id + 300000, user_id, note FROM d_orders WHERE id < ?", args: []any{-5}, binary: true},
	}
	for _, w := range writes {
		via := db
		if w.binary {
			via = binary
		}
		want, err := ref.Exec(w.sql, w.args...)
		if err != nil {
			t.Fatalf("%s on the reference: %v", w.sql, err)
		}
		got, err := via.Exec(w.sql, w.args...)
		if err != nil {
			t.Fatalf("%s %v through the proxy: %v", w.sql, w.args, err)
		}
		wn, _ := want.RowsAffected()
		gn, _ := got.RowsAffected()
		if wn != gn {
			t.Errorf("%s: %d rows affected through the proxy, %d on one database", w.sql, gn, wn)
		}
	}
	// In a transaction the subquery (read on every shard) sees the transaction's own write;
	// the write stays on one shard (a one-writer transaction).
	for _, d := range []*sql.DB{ref, db} {
		ctx := context.Background()
		tx, err := d.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{
			"UPDATE d_orders SET total = 9999.99 WHERE user_id = 3",
			"UPDATE d_orders SET note = 'max' WHERE user_id = 3 AND total = (SELECT MAX(total) FROM d_orders)",
		} {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				t.Fatalf("%s in a transaction: %v", s, err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"SELECT * FROM d_orders", "SELECT * FROM d_items", "SELECT * FROM d_users"} {
		if diff := diffResults(query(t, ref, q), query(t, binary, q), false); diff != "" { // parseTime, as ref
			t.Errorf("%s after the writes: %s", q, diff)
		}
	}
}
