package planner

import (
	"testing"
	"time"

	"github.com/pingcap/tidb/pkg/parser"

	"github.com/shardproxy/shardproxy/rules"
)

func TestReadRole(t *testing.T) {
	on := rules.ReadSplit{Enabled: true, MaxLag: 500 * time.Millisecond}
	cases := []struct {
		sql           string
		split         rules.ReadSplit
		inTxn, sticky bool
		want          rules.Role
	}{
		{"SELECT * FROM orders WHERE user_id = 7", on, false, false, rules.RoleReplica},
		{"SELECT * FROM orders WHERE user_id = 7", rules.ReadSplit{}, false, false, rules.RolePrimary},
		{"SELECT * FROM orders WHERE user_id = 7", on, true, false, rules.RolePrimary},
		{"SELECT * FROM orders WHERE user_id = 7", on, false, true, rules.RolePrimary},
		{"SELECT COUNT(*), MAX(id) FROM orders o JOIN items i ON i.order_id = o.id WHERE o.user_id IN (SELECT id FROM users)", on, false, false, rules.RoleReplica},
		{"SELECT a FROM t UNION ALL SELECT b FROM u", on, false, false, rules.RoleReplica},
		{"SELECT @@version_comment, NOW(), UUID()", on, false, false, rules.RoleReplica},
		{"SELECT * FROM orders WHERE user_id = 7 FOR UPDATE", on, false, false, rules.RolePrimary},
		{"SELECT * FROM orders WHERE user_id = 7 LOCK IN SHARE MODE", on, false, false, rules.RolePrimary},
		{"SELECT a FROM t UNION SELECT b FROM u FOR UPDATE", on, false, false, rules.RolePrimary},
		{"SELECT * FROM t WHERE id IN (SELECT id FROM u FOR UPDATE)", on, false, false, rules.RolePrimary},
		{"SELECT /*+ PRIMARY */ * FROM orders", on, false, false, rules.RolePrimary},
		{"SELECT /*+ MAX_EXECUTION_TIME(100) PRIMARY */ * FROM orders", on, false, false, rules.RolePrimary},
		{"SELECT /*+ MAX_EXECUTION_TIME(100) */ * FROM orders", on, false, false, rules.RoleReplica},
		{"SELECT /* PRIMARY */ * FROM orders", on, false, false, rules.RoleReplica},
		{"SELECT 'PRIMARY' FROM orders", on, false, false, rules.RoleReplica},
		{"SELECT @x", on, false, false, rules.RolePrimary},
		{"SELECT id FROM t WHERE id = @last", on, false, false, rules.RolePrimary},
		{"SELECT id FROM t INTO OUTFILE '/tmp/x'", on, false, false, rules.RolePrimary},
		{"SELECT GET_LOCK('a', 1)", on, false, false, rules.RolePrimary},
		{"SELECT RELEASE_LOCK('a')", on, false, false, rules.RolePrimary},
		{"SELECT * FROM t WHERE id = LAST_INSERT_ID()", on, false, false, rules.RolePrimary},
		{"SELECT FOUND_ROWS()", on, false, false, rules.RolePrimary},
		{"SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1", on, false, false, rules.RolePrimary},
		{"SELECT NEXTVAL(s)", on, false, false, rules.RolePrimary},
		{"SELECT SLEEP(1)", on, false, false, rules.RolePrimary},
		{"INSERT INTO t VALUES (1)", on, false, false, rules.RolePrimary},
		{"UPDATE t SET a = 1", on, false, false, rules.RolePrimary},
		{"DELETE FROM t", on, false, false, rules.RolePrimary},
		{"SHOW TABLES", on, false, false, rules.RolePrimary},
		{"INSERT INTO t SELECT * FROM u", on, false, false, rules.RolePrimary},
	}
	p := parser.New()
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			st, err := p.ParseOneStmt(c.sql, "", "")
			if err != nil {
				t.Fatal(err)
			}
			if got := readRole(st, c.sql, c.split, c.inTxn, c.sticky); got != c.want {
				t.Errorf("readRole = %v, want %v", got, c.want)
			}
		})
	}
}

func TestRetryableRead(t *testing.T) {
	cases := []struct {
		sql  string
		want bool
	}{
		{"SELECT * FROM orders WHERE user_id = 7", true},
		{"SELECT COUNT(*), MAX(id) FROM orders GROUP BY user_id ORDER BY 2", true},
		{"SELECT a FROM t UNION ALL SELECT b FROM u", true},
		{"SELECT NOW(), CONCAT(a, '-', b), IFNULL(c, 0), @@server_id FROM t", true},
		{"SELECT /*+ PRIMARY */ * FROM orders", true}, // the hint picks the server, not the retry
		{"SHOW TABLES", true},
		{"SHOW CREATE TABLE orders", true},
		{"SELECT f(1)", false}, // a stored function may write
		{"SELECT shop.f(id) FROM t", false},
		{"SELECT * FROM t WHERE id = my_func()", false},
		{"SELECT * FROM orders WHERE user_id = 7 FOR UPDATE", false},
		{"SELECT * FROM orders LOCK IN SHARE MODE", false},
		{"SELECT @x", false},
		{"SELECT NEXTVAL(s)", false},
		{"SELECT GET_LOCK('a', 1)", false},
		{"SELECT LAST_INSERT_ID()", false},
		{"SELECT SLEEP(1)", true}, // slow, but changes nothing
		{"SELECT CONNECTION_ID(), ROW_COUNT()", false},
		{"INSERT INTO t VALUES (1)", false},
		{"UPDATE t SET a = 1", false},
		{"CALL p()", false},
		{"DO 1", false},
		{"SET @x = 1", false},
	}
	p := parser.New()
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			st, err := p.ParseOneStmt(c.sql, "", "")
			if err != nil {
				t.Fatal(err)
			}
			if got := RetryableRead(st); got != c.want {
				t.Errorf("RetryableRead = %v, want %v", got, c.want)
			}
		})
	}
}
