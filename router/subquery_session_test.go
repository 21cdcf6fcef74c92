package router

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// boundFixture is a session of user app in database shop of plantest.ShardedConfig, over fake shards
// that answer every SELECT with one row, 1 (a DECIMAL column).
func boundFixture(t *testing.T) (*Session, *fakeBackend) {
	t.Helper()
	be := newFakeBackend()
	snap, err := rules.Build(plantest.ShardedConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := fakeSession(t, New(Options{Rules: rules.NewStore(snap), Backend: be}), "app", 1)
	s.db = "shop"
	return s, be
}

// statementsSent is the backend log without session upkeep and transaction control: the
// SELECT, UPDATE and DELETE statements each shard got ("shard: SQL").
func statementsSent(be *fakeBackend) []string {
	var out []string
	for _, l := range be.takeLog() {
		shard, sql, _ := strings.Cut(l, ": ")
		shard, _, _ = strings.Cut(shard, "#")
		for _, p := range []string{"SELECT ", "INSERT ", "UPDATE ", "DELETE ", "PREPARE ", "EXECUTE "} {
			if strings.HasPrefix(sql, p) && !strings.HasPrefix(sql, "SELECT @@") {
				out = append(out, shard+": "+sql)
			}
		}
	}
	return out
}

// TestBoundSubqueries runs statements whose subqueries span shards and checks what each
// shard is sent: the subquery first, scattered, then the statement with the subquery's value
// bound and routed by it; or the error MariaDB would give, or the refusal with its reason.
func TestBoundSubqueries(t *testing.T) {
	const dec = "CAST(1 AS DECIMAL(1))" // the fake's 1, typed as its column
	scatter := func(sql string) []string {
		return []string{"s0: " + sql, "s1: " + sql, "s2: " + sql, "s3: " + sql}
	}
	for _, c := range []struct {
		name    string
		sql     string
		failSel bool     // the shards answer a SELECT ... FROM with 1054 (a correlated subquery run alone)
		sent    []string // the statements sent, in order
		code    uint16
	}{
		{name: "several rows bind a subquery that fails where evaluated", sql: "SELECT id FROM orders WHERE total > (SELECT total FROM orders WHERE id = 7)",
			sent: slices.Concat(scatter("SELECT `total` FROM `orders` WHERE `id`=7 LIMIT 2"),
				scatter("SELECT `id` FROM `orders` WHERE `total`>(SELECT "+dec+" UNION ALL SELECT "+dec+")"))},
		{name: "scalar in the select list, named after its text", sql: "SELECT (SELECT total FROM orders WHERE id = 7 LIMIT 1), name FROM settings",
			sent: slices.Concat(scatter("SELECT `total` FROM `orders` WHERE `id`=7 LIMIT 1"),
				[]string{"s0: SELECT " + dec + " AS `(SELECT total FROM orders WHERE id = 7 LIMIT 1)`,`name` FROM `settings`"})},
		{name: "UPDATE routed by the values of its IN subquery", sql: "UPDATE orders SET note = 'x' WHERE user_id IN (SELECT user_id FROM order_items WHERE qty > 5)",
			sent: slices.Concat(scatter("SELECT `user_id` FROM `order_items` WHERE `qty`>5 LIMIT 10001"),
				[]string{"s1: UPDATE `orders` SET `note`='x' WHERE `user_id` IN (1,1,1,1)"})},
		{name: "scalar in an UPDATE's SET, pinned WHERE", sql: "UPDATE orders SET total = (SELECT total FROM order_items WHERE id = 3 LIMIT 1) WHERE user_id = 2",
			sent: slices.Concat(scatter("SELECT `total` FROM `order_items` WHERE `id`=3 LIMIT 1"),
				[]string{"s0: UPDATE `orders` SET `total`=" + dec + " WHERE `user_id`=2"})},
		{name: "INSERT ... SELECT inserts the rows read, routed by their keys", sql: "INSERT INTO orders (user_id) SELECT user_id FROM order_items WHERE qty > 5",
			sent: slices.Concat(scatter("SELECT `user_id` FROM `order_items` WHERE `qty`>5 LIMIT 10001"),
				[]string{"s1: INSERT INTO `orders` (`user_id`) VALUES (1),(1),(1),(1)"})},
		{name: "correlated subquery refused with the reason", sql: "SELECT id FROM orders o WHERE total > (SELECT total FROM order_items i WHERE i.order_id = o.id)", failSel: true,
			sent: scatter("SELECT `total` FROM `order_items` AS `i` WHERE `i`.`order_id`=`o`.`id` LIMIT 2"), code: 1235},
		{name: "IN subquery with LIMIT refused as MariaDB refuses it", sql: "SELECT id FROM orders WHERE user_id IN (SELECT user_id FROM order_items LIMIT 3)", code: 1235},
		{name: "several rows in a scatter HAVING", sql: "SELECT status, COUNT(*) FROM orders GROUP BY status HAVING COUNT(*) > (SELECT total FROM orders WHERE id = 7)",
			sent: scatter("SELECT `total` FROM `orders` WHERE `id`=7 LIMIT 2"), code: erSubqueryNo1Row},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, be := boundFixture(t)
			if c.failSel {
				be.failSelects = map[string]bool{"s0": true, "s1": true, "s2": true, "s3": true}
			}
			var w clientRecorder
			err := s.Query(context.Background(), c.sql, false, &w)
			if sqlCode(err) != c.code {
				t.Fatalf("%v, want code %d", err, c.code)
			}
			if got := statementsSent(be); !slices.Equal(got, c.sent) {
				t.Errorf("sent\n%q\nwant\n%q", got, c.sent)
			}
			if c.code == 1235 && !strings.Contains(err.Error(), "correlated") && !strings.Contains(err.Error(), "LIMIT & IN") {
				t.Errorf("the refusal does not name its reason: %v", err)
			}
		})
	}
}

// TestBoundSubqueriesPrepared: a prepared statement whose subquery spans shards is prepared
// on slot 0's shard to describe it; each execution binds its parameter into the subquery,
// runs it, and runs the statement with the value bound.
func TestBoundSubqueriesPrepared(t *testing.T) {
	s, be := boundFixture(t)
	st, err := s.Prepare(context.Background(), "SELECT id FROM orders WHERE total > (SELECT total FROM order_items WHERE status = ? LIMIT 1) AND user_id = ?")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := statementsSent(be), []string{"s0: PREPARE SELECT id FROM orders WHERE total > (SELECT total FROM order_items WHERE status = ? LIMIT 1) AND user_id = ?"}; !slices.Equal(got, want) {
		t.Errorf("prepared\n%q\nwant\n%q", got, want)
	}
	var w clientRecorder
	params := []wire.Param{{Type: mysql.MYSQL_TYPE_VAR_STRING, Value: wire.AppendLenencString(nil, "paid")}, {Type: mysql.MYSQL_TYPE_LONGLONG, Value: []byte{2, 0, 0, 0, 0, 0, 0, 0}}}
	if err := s.Execute(context.Background(), st, params, &w); err != nil {
		t.Fatal(err)
	}
	inner := "SELECT `total` FROM `order_items` WHERE `status`='paid' LIMIT 1"
	want := []string{"s0: " + inner, "s1: " + inner, "s2: " + inner, "s3: " + inner,
		"s0: PREPARE SELECT `id` FROM `orders` WHERE `total`>CAST(1 AS DECIMAL(1)) AND `user_id`=2", "s0: EXECUTE 2 "}
	if got := statementsSent(be); !slices.Equal(got, want) {
		t.Errorf("executed\n%q\nwant\n%q", got, want)
	}
}
