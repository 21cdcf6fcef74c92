package integration

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// shardedPrograms are the triggers and functions testShardedPrograms creates, the same
// through the proxy and on the reference database: counters of d_orders kept in d_audit,
// a table of the same scheme, by the row's own shard key; a BEFORE INSERT trigger reading
// the broadcast currencies; functions, one reading currencies.
var shardedPrograms = []string{
	"CREATE TRIGGER d_orders_ai AFTER INSERT ON d_orders FOR EACH ROW INSERT INTO d_audit (user_id, orders, total) VALUES (NEW.user_id, 1, IFNULL(NEW.total, 0)) ON DUPLICATE KEY UPDATE orders = orders + 1, total = total + IFNULL(NEW.total, 0)",
	"CREATE TRIGGER d_orders_au AFTER UPDATE ON d_orders FOR EACH ROW BEGIN\n  UPDATE d_audit SET total = total - IFNULL(OLD.total, 0) + IFNULL(NEW.total, 0) WHERE user_id = NEW.user_id;\nEND",
	"CREATE TRIGGER d_orders_ad AFTER DELETE ON d_orders FOR EACH ROW UPDATE d_audit SET orders = orders - 1, total = total - IFNULL(OLD.total, 0) WHERE d_audit.user_id = OLD.user_id",
	"CREATE TRIGGER d_orders_bi BEFORE INSERT ON d_orders FOR EACH ROW SET NEW.note = IFNULL(NEW.note, CONCAT('rate ', IFNULL((SELECT rate FROM currencies WHERE code = NEW.currency), '-')))",
	"CREATE TRIGGER d_ledger_bi BEFORE INSERT ON d_ledger FOR EACH ROW SET NEW.kind = UPPER(NEW.kind)",
	"CREATE TRIGGER d_ledger_bi2 BEFORE INSERT ON d_ledger FOR EACH ROW FOLLOWS d_ledger_bi SET NEW.kind = CONCAT(NEW.kind, '!')",
	"CREATE TRIGGER d_ledger_ai AFTER INSERT ON d_ledger FOR EACH ROW INSERT INTO accounts (account_id, owner) VALUES (NEW.account_id, NEW.kind) ON DUPLICATE KEY UPDATE owner = CONCAT(IFNULL(owner, ''), '+', NEW.kind)",
	"CREATE FUNCTION d_rate(c CHAR(3)) RETURNS DECIMAL(10,4) READS SQL DATA RETURN (SELECT rate FROM currencies WHERE code = c)",
	"CREATE FUNCTION d_twice(x DECIMAL(12,2)) RETURNS DECIMAL(14,2) DETERMINISTIC RETURN x * 2",
}

// shardedProgramWrites are the writes whose triggers testShardedPrograms compares: one
// shard, several shards (two-phase commit), no shard key (every shard).
var shardedProgramWrites = []string{
	"INSERT INTO d_orders (id, user_id, status, total, currency, created_at) VALUES (900001, 1, 'new', 10.50, 'EUR', '2026-05-01 10:00:00')",
	"INSERT INTO d_orders (id, user_id, status, total, currency, created_at, note) VALUES (900002, 2, 'new', 3.25, 'USD', '2026-05-01 10:00:00', NULL), " +
		"(900003, 3, 'new', NULL, 'JPY', '2026-05-01 10:00:00', 'x'), (900004, 4, 'paid', 7, 'XXX', '2026-05-01 10:00:00', NULL), (900005, 1, 'new', 1, 'GBP', '2026-05-02 10:00:00', NULL)",
	"UPDATE d_orders SET total = IFNULL(total, 0) + 1 WHERE user_id IN (1, 2, 3, 4, 5, 6, 7, 8)",
	"UPDATE d_orders SET total = 99 WHERE id = 900003",
	"DELETE FROM d_orders WHERE user_id = 7",
	"DELETE FROM d_orders WHERE id IN (900002, 900004)",
	"INSERT INTO d_ledger (id, account_id, amount, kind, created_at) VALUES (900001, 1, 1, 'fee', '2026-05-01 00:00:00'), (900002, 2, 2, 'debit', '2026-05-01 00:00:00'), " +
		"(900003, 3, 3, 'credit', '2026-05-01 00:00:00'), (900004, 4, 4, 'fee', '2026-05-01 00:00:00'), (900005, 5, 5, 'fee', '2026-05-01 00:00:00'), " +
		"(900006, 6, 6, 'fee', '2026-05-01 00:00:00'), (900007, 7, 7, 'fee', '2026-05-01 00:00:00'), (900008, 8, 8, 'debit', '2026-05-01 00:00:00')",
}

// testShardedPrograms: triggers and stored functions in the sharded database. A trigger on
// d_orders exists on every shard and fires there for that shard's rows, keeping the
// counters of the same user in d_audit: after the same writes, d_audit and d_orders hold what
// one MariaDB with the same triggers holds, and every counter row sits on its user's shard.
// Triggers on the table-per-slot d_ledger (one FOLLOWS the other, one keeping accounts, a
// table per slot of the same scheme, by the row's key) exist on every slot table, each naming
// its slot's accounts table, and give the rows one MariaDB gives.
// A function reading the broadcast currencies works in a scatter SELECT. The listings show
// one copy of each under the logical database; programs the proxy cannot make right are
// refused with 1235 naming why, and nothing is created; DROP removes every copy.
func testShardedPrograms(t *testing.T, ce *compatEnv) {
	// accounts (a table per slot, sharded like d_ledger) on the reference too, as it is now.
	mustExec(t, ce.ref, "CREATE TABLE accounts (account_id BIGINT PRIMARY KEY, owner VARCHAR(32))")
	for _, r := range query(t, ce.db, "SELECT account_id, owner FROM accounts").Rows {
		mustExecArgs(t, ce.ref, "INSERT INTO accounts (account_id, owner) VALUES (?, ?)", r[0], r[1])
	}
	for _, q := range shardedPrograms {
		mustExec(t, ce.ref, q)
		mustExec(t, ce.db, q)
	}
	for i, sh := range ce.se.shards {
		got := queryString(t, sh, "SELECT CONCAT((SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'shop'), '/', "+
			"(SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'shop'))")
		if got != "10/2" { // four on d_orders, three on each of the shard's two d_ledger slot tables
			t.Errorf("shard s%d holds %s triggers/functions, want 10/2", i, got)
		}
	}
	for _, q := range shardedProgramWrites {
		mustExec(t, ce.ref, q)
		mustExec(t, ce.db, q)
	}
	for _, q := range []string{
		"SELECT * FROM d_audit ORDER BY user_id",
		"SELECT id, user_id, total, note FROM d_orders WHERE id >= 900000 ORDER BY id",
		"SELECT currency, SUM(total * IFNULL(d_rate(currency), 1)), MAX(d_twice(total)) FROM d_orders GROUP BY currency ORDER BY currency",
		"SELECT id FROM d_orders WHERE d_twice(total) > 500 ORDER BY id",
		"SELECT id, account_id, kind FROM d_ledger WHERE id >= 900000 ORDER BY id",
		"SELECT * FROM accounts ORDER BY account_id",
	} {
		want, got := rowStrings(query(t, ce.ref, q).Rows), rowStrings(query(t, ce.db, q).Rows)
		if !slices.Equal(got, want) {
			t.Errorf("%s through the proxy:\n%q\nwant (one MariaDB):\n%q", q, got, want)
		}
		if len(want) == 0 {
			t.Errorf("%s: no rows on the reference; the comparison shows nothing", q)
		}
	}
	for i, sh := range ce.se.shards {
		for _, r := range query(t, sh, "SELECT user_id FROM d_audit").Rows {
			id, _ := strconv.ParseInt(text(r[0]), 10, 64)
			if userShard(t, id) != i {
				t.Errorf("d_audit row of user %d on shard s%d, not on its user's shard s%d", id, i, userShard(t, id))
			}
		}
	}

	t.Run("Listings", func(t *testing.T) { shardedProgramListings(t, ce) })
	t.Run("Refused", func(t *testing.T) { shardedProgramRefusals(t, ce) })
	t.Run("Alter", func(t *testing.T) {
		mustExec(t, ce.db, "ALTER FUNCTION d_twice COMMENT 'doubles'")
		for i, sh := range ce.se.shards {
			if c := queryString(t, sh, "SELECT ROUTINE_COMMENT FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'shop' AND ROUTINE_NAME = 'd_twice'"); c != "doubles" {
				t.Errorf("d_twice's comment on shard s%d: %q", i, c)
			}
		}
		mustExec(t, ce.db, "ALTER FUNCTION d_twice COMMENT ''")
	})
	t.Run("Drop", func(t *testing.T) {
		mustExec(t, ce.db, "CREATE TRIGGER d_gone AFTER DELETE ON d_ledger FOR EACH ROW SET @x = OLD.id", "DROP TRIGGER d_gone")
		for i, sh := range ce.se.shards {
			if n := queryString(t, sh, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'shop' AND TRIGGER_NAME LIKE 'd\\_gone%'"); n != "0" {
				t.Errorf("%s copies of d_gone left on shard s%d after DROP", n, i)
			}
		}
		_, err := tryQuery(ce.db, "DROP TRIGGER d_gone")
		wantError(t, err, 1360, "HY000")
		mustExec(t, ce.db, "CREATE FUNCTION d_gone() RETURNS INT DETERMINISTIC RETURN 1", "DROP FUNCTION d_gone")
		_, err = tryQuery(ce.db, "DROP FUNCTION d_gone")
		wantError(t, err, 1305, "42000")
		mustExec(t, ce.db, "DROP FUNCTION IF EXISTS d_gone")
		for i, sh := range ce.se.shards {
			if n := queryString(t, sh, "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'shop' AND ROUTINE_NAME = 'd_gone'"); n != "0" {
				t.Errorf("d_gone left on shard s%d after DROP", i)
			}
		}
	})
}

// shardedProgramListings: SHOW and information_schema give one copy of each program, as the
// reference database does.
func shardedProgramListings(t *testing.T, ce *compatEnv) {
	for _, q := range []string{
		"SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_TIMING FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1",
		"SELECT ROUTINE_NAME, ROUTINE_TYPE, DATA_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() ORDER BY 1",
		"SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_TABLE = 'd_orders' AND TRIGGER_SCHEMA = DATABASE()",
	} {
		want, got := rowStrings(query(t, ce.ref, q).Rows), rowStrings(query(t, ce.db, q).Rows)
		if !slices.Equal(got, want) {
			t.Errorf("%s through the proxy:\n%q\nwant:\n%q", q, got, want)
		}
	}
	names := func(q string, col int) []string {
		var out []string
		for _, r := range query(t, ce.db, q).Rows {
			out = append(out, text(r[col]))
		}
		return out
	}
	got := names("SHOW TRIGGERS", 0)
	slices.Sort(got)
	if !slices.Equal(got, []string{"d_ledger_ai", "d_ledger_bi", "d_ledger_bi2", "d_orders_ad", "d_orders_ai", "d_orders_au", "d_orders_bi"}) {
		t.Errorf("SHOW TRIGGERS: %q, want the seven triggers once", got)
	}
	if got := names("SHOW TRIGGERS LIKE 'd_ledger'", 2); !slices.Equal(got, []string{"d_ledger", "d_ledger", "d_ledger"}) {
		t.Errorf("SHOW TRIGGERS LIKE 'd_ledger': tables %q", got)
	}
	res := query(t, ce.db, "SHOW CREATE TRIGGER d_ledger_bi2")
	// MariaDB keeps FOLLOWS as the triggers' order, not in the statement.
	if len(res.Rows) != 1 || !strings.Contains(text(res.Rows[0][2]), "TRIGGER `d_ledger_bi2` BEFORE INSERT ON `d_ledger` FOR EACH ROW SET") {
		t.Errorf("SHOW CREATE TRIGGER of a trigger on a table per slot: %v", res.Rows)
	}
	if got := names("SHOW TRIGGERS LIKE 'd_orders'", 2); len(got) != 4 || slices.ContainsFunc(got, func(s string) bool { return s != "d_orders" }) {
		t.Errorf("SHOW TRIGGERS LIKE 'd_orders': tables %q", got)
	}
	if got := names("SHOW FUNCTION STATUS WHERE Db = 'shop'", 1); !slices.Equal(got, []string{"d_rate", "d_twice"}) {
		t.Errorf("SHOW FUNCTION STATUS: %q, want d_rate, d_twice under shop", got)
	}
	res = query(t, ce.db, "SHOW CREATE TRIGGER d_ledger_ai")
	if len(res.Rows) != 1 || !strings.Contains(text(res.Rows[0][2]), "ON `d_ledger` FOR EACH ROW INSERT INTO `accounts` (account_id, owner)") {
		t.Errorf("SHOW CREATE TRIGGER of a trigger naming a table per slot: %v", res.Rows)
	}
	res = query(t, ce.db, "SHOW CREATE TRIGGER d_orders_ai")
	if len(res.Rows) != 1 || !strings.Contains(text(res.Rows[0][2]), "INSERT INTO d_audit") {
		t.Errorf("SHOW CREATE TRIGGER: %v", res.Rows)
	}
	res = query(t, ce.db, "SHOW CREATE FUNCTION d_rate")
	if len(res.Rows) != 1 || !strings.Contains(text(res.Rows[0][2]), "FROM currencies") {
		t.Errorf("SHOW CREATE FUNCTION: %v", res.Rows)
	}
}

// shardedProgramRefusals: each refusal is 1235 with its reason, and creates nothing.
func shardedProgramRefusals(t *testing.T, ce *compatEnv) {
	for _, tc := range []struct{ sql, reason string }{
		{"CREATE TRIGGER d_bad AFTER INSERT ON d_orders FOR EACH ROW UPDATE d_users SET name = name WHERE country = 'DE'", "without pinning it to the row's shard key"},
		{"CREATE TRIGGER d_bad AFTER INSERT ON d_orders FOR EACH ROW UPDATE currencies SET rate = rate + 1 WHERE code = NEW.currency", "writing the broadcast table currencies"},
		{"CREATE TRIGGER d_bad BEFORE INSERT ON d_orders FOR EACH ROW SET NEW.user_id = NEW.user_id + 1", "NEW.user_id, the shard key"},
		{"CREATE TRIGGER d_bad AFTER INSERT ON d_orders FOR EACH ROW DELETE FROM accounts WHERE account_id = NEW.user_id", "table-per-slot table accounts"},
		{"CREATE FUNCTION d_bad(u BIGINT) RETURNS INT READS SQL DATA RETURN (SELECT COUNT(*) FROM d_orders WHERE user_id = u)", "sharded table d_orders"},
		{"CREATE EVENT d_bad ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM d_orders WHERE total < 0", "sharded table d_orders"},
		{"CREATE PROCEDURE d_bad() BEGIN SELECT COUNT(*) FROM d_orders; END", "sharded table d_orders"},
	} {
		_, err := tryQuery(ce.db, tc.sql)
		wantError(t, err, 1235, "42000")
		if err == nil || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: %v, want the reason %q", tc.sql, err, tc.reason)
		}
	}
	for i, sh := range ce.se.shards {
		got := queryString(t, sh, "SELECT (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_NAME = 'd_bad') + "+
			"(SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_NAME = 'd_bad') + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_NAME = 'd_bad')")
		if got != "0" {
			t.Errorf("%s refused programs exist on shard s%d", got, i)
		}
	}
}

// programCounts is how many triggers and routines of shop each shard holds.
func programCounts(t *testing.T, ce *compatEnv) string {
	t.Helper()
	var out []string
	for _, sh := range ce.se.shards {
		out = append(out, queryString(t, sh, "SELECT CONCAT(IFNULL((SELECT GROUP_CONCAT(TRIGGER_NAME ORDER BY TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'shop'), ''), '/', "+
			"IFNULL((SELECT GROUP_CONCAT(ROUTINE_NAME ORDER BY ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'shop'), ''))"))
	}
	return fmt.Sprint(out)
}
