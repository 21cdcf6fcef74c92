package router

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// TestStoredProgramsSharded: in a database with sharded tables each program is created
// where its body gives the answer one server would (every shard of a trigger's sharded
// table, every copy of a broadcast table, every shard for a function, the default shard for
// events, triggers on single tables and procedures), and refused with 1235 naming the
// reason where its body names rows that are not all there. The barrier still walks every
// body. Nothing reaches a backend when it is refused.
func TestStoredProgramsSharded(t *testing.T) {
	all := []string{"s0", "s1", "s2", "s3"}
	cases := []struct {
		name   string
		sql    string
		code   uint16   // 0: allowed
		shards []string // where it is sent when allowed
		reason string   // in the refusal's message
	}{
		{"TriggerSameShardInsert", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW INSERT INTO order_items (user_id, n) VALUES (NEW.user_id, 1)", 0, all, ""},
		{"TriggerSameShardCounter", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW BEGIN UPDATE order_items SET n = n + 1 WHERE (user_id = NEW.user_id AND k = 2); END", 0, all, ""},
		{"TriggerSameShardDelete", "CREATE TRIGGER tr AFTER DELETE ON orders FOR EACH ROW DELETE FROM order_items WHERE OLD.user_id = order_items.user_id", 0, all, ""},
		{"TriggerAliasedSelect", "CREATE TRIGGER tr BEFORE UPDATE ON orders FOR EACH ROW SET NEW.n = (SELECT COUNT(*) FROM order_items i WHERE i.user_id = OLD.user_id)", 0, all, ""},
		{"TriggerInsertSet", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW INSERT INTO order_items SET user_id = NEW.user_id, n = 1 ON DUPLICATE KEY UPDATE n = n + 1", 0, all, ""},
		{"TriggerReadsBroadcast", "CREATE TRIGGER tr BEFORE INSERT ON orders FOR EACH ROW SET NEW.rate = (SELECT rate FROM currencies WHERE code = NEW.cur)", 0, all, ""},
		{"TriggerOnBroadcast", "CREATE TRIGGER tr BEFORE INSERT ON currencies FOR EACH ROW BEGIN SET NEW.name = UPPER(NEW.name); UPDATE currencies SET rate = rate WHERE code = 'EUR'; END", 0, all, ""},
		{"TriggerOnBroadcastNamesSingle", "CREATE TRIGGER tr AFTER INSERT ON currencies FOR EACH ROW INSERT INTO currencies_log (code) VALUES (NEW.code)", sqlerr.ErNotSupportedYet, nil, "single table currencies_log"},
		{"TriggerOnSingle", "CREATE TRIGGER tr AFTER INSERT ON settings FOR EACH ROW INSERT INTO settings_log SELECT * FROM currencies", 0, []string{"s0"}, ""},
		{"TriggerRangeScheme", "CREATE TRIGGER tr BEFORE INSERT ON events FOR EACH ROW SET NEW.a = 1", 0, []string{"s0", "s1", "s2"}, ""},
		{"Function", "CREATE FUNCTION f(c CHAR(3)) RETURNS DECIMAL(10,4) READS SQL DATA RETURN (SELECT rate FROM currencies WHERE code = c)", 0, all, ""},
		{"Event", "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM settings WHERE k IN (SELECT code FROM currencies)", 0, []string{"s0"}, ""},
		{"DropFunction", "DROP FUNCTION IF EXISTS f", 0, all, ""},
		{"Procedure", "CREATE PROCEDURE p() BEGIN SELECT * FROM settings; END", 0, []string{"s0"}, ""},
		{"AlterFunction", "ALTER FUNCTION f COMMENT 'x'", 0, all, ""},
		{"AlterProcedure", "ALTER PROCEDURE p COMMENT 'x'", 0, []string{"s0"}, ""},
		{"AlterEvent", "ALTER EVENT e DISABLE DO DELETE FROM settings WHERE k = 1", 0, []string{"s0"}, ""},
		{"AlterEventOnSharded", "ALTER EVENT e DO DELETE FROM orders WHERE n < 0", sqlerr.ErNotSupportedYet, nil, "sharded table orders"},

		{"TriggerWritesSingle", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW INSERT INTO settings VALUES (NEW.user_id)", sqlerr.ErNotSupportedYet, nil, "single table settings"},
		{"TriggerUnpinnedRead", "CREATE TRIGGER tr BEFORE INSERT ON orders FOR EACH ROW SET NEW.n = (SELECT COUNT(*) FROM order_items)", sqlerr.ErNotSupportedYet, nil, "without pinning"},
		{"TriggerPinnedByOr", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW UPDATE order_items SET n = 0 WHERE user_id = NEW.user_id OR n > 5", sqlerr.ErNotSupportedYet, nil, "without pinning"},
		{"TriggerPinnedByOtherColumn", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW DELETE FROM order_items WHERE user_id = NEW.n", sqlerr.ErNotSupportedYet, nil, "without pinning"},
		{"TriggerKeyShadowed", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW BEGIN DECLARE user_id INT DEFAULT 5; UPDATE order_items SET n = 0 WHERE user_id = NEW.user_id; END", sqlerr.ErNotSupportedYet, nil, "without pinning"},
		{"TriggerKeyShadowedQualified", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW BEGIN DECLARE user_id INT DEFAULT 5; UPDATE order_items SET n = 0 WHERE order_items.user_id = NEW.user_id; END", 0, all, ""},
		{"TriggerInsertOld", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW INSERT INTO order_items (user_id) VALUES (OLD.user_id)", sqlerr.ErNotSupportedYet, nil, "without pinning"},
		{"TriggerInsertSelect", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW INSERT INTO order_items (user_id) SELECT NEW.user_id", sqlerr.ErNotSupportedYet, nil, "without pinning"},
		{"TriggerOtherScheme", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW DELETE FROM events WHERE id = NEW.user_id", sqlerr.ErNotSupportedYet, nil, "another scheme"},
		{"TriggerWritesBroadcast", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW UPDATE currencies SET rate = 1", sqlerr.ErNotSupportedYet, nil, "broadcast table currencies"},
		{"TriggerSetsKey", "CREATE TRIGGER tr BEFORE INSERT ON orders FOR EACH ROW SET NEW.user_id = 5", sqlerr.ErNotSupportedYet, nil, "NEW.user_id"},
		{"TriggerChangesKey", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW UPDATE order_items SET user_id = 9 WHERE user_id = NEW.user_id", sqlerr.ErNotSupportedYet, nil, "changing the shard key"},
		{"TriggerNamesTablePerSlot", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW DELETE FROM ledger WHERE account_id = NEW.user_id", sqlerr.ErNotSupportedYet, nil, "table-per-slot"},
		{"TriggerCall", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW BEGIN CALL p(); END", sqlerr.ErParse, nil, ""}, // the parser reads no CALL in a body: refused all the same,
		{"TriggerDatabase", "CREATE TRIGGER tr BEFORE INSERT ON orders FOR EACH ROW BEGIN SET NEW.db = DATABASE(); END", sqlerr.ErNotSupportedYet, nil, "DATABASE()"},
		{"TriggerBarrier", "CREATE TRIGGER tr BEFORE INSERT ON orders FOR EACH ROW BEGIN SET NEW.a = (SELECT COUNT(*) FROM mysql.user); END", sqlerr.ErDBAccessDenied, nil, ""},
		{"TriggerBarrierLoadFile", "CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW BEGIN IF 1 THEN SET @x = LOAD_FILE('/etc/passwd'); END IF; END", sqlerr.ErSpecificAccessDenied, nil, ""},
		{"FunctionReadsSharded", "CREATE FUNCTION f(u INT) RETURNS INT RETURN (SELECT COUNT(*) FROM orders WHERE user_id = u)", sqlerr.ErNotSupportedYet, nil, "sharded table orders"},
		{"FunctionReadsSingle", "CREATE FUNCTION f() RETURNS INT RETURN (SELECT COUNT(*) FROM settings)", sqlerr.ErNotSupportedYet, nil, "single table settings"},
		{"FunctionWritesBroadcast", "CREATE FUNCTION f() RETURNS INT BEGIN DELETE FROM currencies; RETURN 1; END", sqlerr.ErNotSupportedYet, nil, "writing the broadcast table"},
		{"EventOnSharded", "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM orders WHERE n < 0", sqlerr.ErNotSupportedYet, nil, "sharded table orders"},
		{"ProcedureOnSharded", "CREATE PROCEDURE p() BEGIN SELECT * FROM orders; END", sqlerr.ErNotSupportedYet, nil, "sharded table orders"},
		{"ProcedureWritesBroadcast", "CREATE PROCEDURE p() UPDATE currencies SET rate = 2", sqlerr.ErNotSupportedYet, nil, "broadcast table currencies"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := newFakeBackend()
			s := fakeSession(t, shardedRouter(t, be), "app", 1)
			s.db = "shop"
			var w clientRecorder
			err := s.Query(context.Background(), tc.sql, true, &w)
			if sqlCode(err) != tc.code {
				t.Fatalf("%s: %v, want code %d", tc.sql, err, tc.code)
			}
			if tc.code != 0 {
				if !strings.Contains(err.Error(), tc.reason) {
					t.Errorf("%s: %v, want the reason %q", tc.sql, err, tc.reason)
				}
				wantLog(t, be)
				return
			}
			var got, want []string
			for _, l := range be.takeLog() {
				if !strings.Contains(l, ": USE ") {
					shard, stmt, _ := strings.Cut(l, ": ")
					shard, _, _ = strings.Cut(shard, "#")
					got = append(got, shard+": "+stmt)
				}
			}
			for _, sh := range tc.shards {
				want = append(want, sh+": "+strings.TrimSuffix(tc.sql, ";"))
			}
			if !slices.Equal(got, want) {
				t.Errorf("backends received\n%q\nwant\n%q", got, want)
			}
			if oks := w.oks(); len(oks) != 1 {
				t.Errorf("client got %d OKs, want one", len(oks))
			}
		})
	}
}

// TestStoredProgramsShardedPartial: a CREATE that fails on some shards says where the
// program exists and where it does not, as the DDL fan-out does.
func TestStoredProgramsShardedPartial(t *testing.T) {
	be := newFakeBackend()
	be.failShards = map[string]bool{"s2": true}
	s := fakeSession(t, shardedRouter(t, be), "app", 1)
	s.db = "shop"
	var w clientRecorder
	err := s.Query(context.Background(), "CREATE FUNCTION f() RETURNS INT DETERMINISTIC RETURN 1", true, &w)
	if err == nil || !strings.Contains(err.Error(), "DDL partially applied: succeeded on [s0, s1, s3]; failed on [s2 (1050") {
		t.Fatalf("partial CREATE FUNCTION: %v", err)
	}
}

// TestStoredProgramsShardedOffDefault: a trigger on a sharded table with no slot on the
// default shard is refused: the listings and mariadb-dump read the default shard.
func TestStoredProgramsShardedOffDefault(t *testing.T) {
	cfg := plantest.ShardedConfig()
	cfg.Schemes = append(cfg.Schemes, rules.SchemeConfig{Name: "far", Function: "range", Ranges: []rules.RangeConfig{{To: "100", Shard: "s1"}, {From: "100", Shard: "s2"}}})
	cfg.Databases[0].Tables = append(cfg.Databases[0].Tables, rules.TableConfig{Name: "far_rows", Kind: rules.KindSharded, Key: "id", Scheme: "far"})
	snap, err := rules.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	be := newFakeBackend()
	s := fakeSession(t, New(Options{Rules: rules.NewStore(snap), Backend: be}), "app", 1)
	s.db = "shop"
	var w clientRecorder
	err = s.Query(context.Background(), "CREATE TRIGGER tr BEFORE INSERT ON far_rows FOR EACH ROW SET NEW.a = 1", true, &w)
	if sqlCode(err) != sqlerr.ErNotSupportedYet || !strings.Contains(err.Error(), "no slot on the default shard s0") {
		t.Fatalf("trigger off the default shard: %v", err)
	}
	wantLog(t, be)
}

// TestStoredProgramsSlotTables: a trigger on a table-per-slot table is created on every slot
// table, under the client's name on each shard's first slot table (the copy the listings
// show) and name_SSSS on the others; FOLLOWS names the other trigger's copy on the same slot
// table. DROP TRIGGER drops the later slots' copies found on each shard by name and table.
func TestStoredProgramsSlotTables(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, shardedRouter(t, be), "app", 1)
	s.db = "shop"
	var w clientRecorder
	exec(t, s, "CREATE TRIGGER tr AFTER INSERT ON accounts FOR EACH ROW FOLLOWS t0 SET @a = NEW.account_id", &w)
	var got []string
	for _, l := range be.takeLog() {
		if !strings.Contains(l, ": USE ") {
			got = append(got, l)
		}
	}
	var want []string
	for slot := range 8 {
		name, other := "`tr`", "`t0`"
		if slot%2 == 1 {
			name, other = fmt.Sprintf("`tr_%04d`", slot), fmt.Sprintf("`t0_%04d`", slot)
		}
		want = append(want, fmt.Sprintf("s%d#%d: CREATE TRIGGER %s AFTER INSERT ON `accounts_%04d` FOR EACH ROW FOLLOWS %s SET @a = NEW.account_id", slot/2, slot/2+1, name, slot, other))
	}
	if !slices.Equal(got, want) {
		t.Errorf("backends received\n%q\nwant\n%q", got, want)
	}

	exec(t, s, "DROP TRIGGER IF EXISTS tr", &w)
	got = got[:0]
	for _, l := range be.takeLog() {
		if !strings.Contains(l, ": USE ") {
			got = append(got, l)
		}
	}
	if len(got) != 8 {
		t.Fatalf("DROP TRIGGER sent %q, want a DROP and a look for the later slots' copies on each shard", got)
	}
	for i, l := range got {
		sh := fmt.Sprintf("s%d#%d: ", i/2, i/2+1)
		switch {
		case i%2 == 0 && l != sh+"DROP TRIGGER IF EXISTS tr":
			t.Errorf("statement %d: %q", i, l)
		case i%2 == 1 && (!strings.HasPrefix(l, sh+"SELECT TRIGGER_NAME") || !strings.Contains(l, fmt.Sprintf("('tr_%04d', 'accounts_%04d')", i, i)) ||
			!strings.Contains(l, fmt.Sprintf("('tr_%04d', 'ledger_%04d')", i, i))):
			t.Errorf("statement %d: %q, want the look for tr_%04d on accounts_%04d and ledger_%04d", i, l, i, i, i)
		}
	}
}

// TestSlotTriggerLogical: SHOW CREATE TRIGGER of the copy on a shard's first slot table names
// the logical table.
func TestSlotTriggerLogical(t *testing.T) {
	snap, err := rules.Build(plantest.ShardedConfig())
	if err != nil {
		t.Fatal(err)
	}
	db, _ := snap.Database("shop")
	shard := db.Table("accounts").Placements()[2].Shard // s1: accounts_0002, accounts_0003
	n := introspect.NamesOn(snap, "app", shard)
	stmt := "CREATE DEFINER=`proxy`@`%` TRIGGER `tr` AFTER INSERT ON `accounts_0002` FOR EACH ROW SET @a = 'ON `accounts_0002` FOR EACH ROW'"
	got, ok := n.Logical(stmt)
	if want := "CREATE DEFINER=`proxy`@`%` TRIGGER `tr` AFTER INSERT ON `accounts` FOR EACH ROW SET @a = 'ON `accounts_0002` FOR EACH ROW'"; !ok || got != want {
		t.Errorf("Logical(%q) = %q, %v; want %q", stmt, got, ok, want)
	}
	stmt = "CREATE DEFINER=`proxy`@`%` TRIGGER `tr` AFTER INSERT ON `accounts_0002` FOR EACH ROW INSERT INTO `ledger_0002` (account_id) VALUES (NEW.account_id) /* `x` */"
	got, ok = n.Logical(stmt)
	if want := "CREATE DEFINER=`proxy`@`%` TRIGGER `tr` AFTER INSERT ON `accounts` FOR EACH ROW INSERT INTO `ledger` (account_id) VALUES (NEW.account_id) /* `x` */"; !ok || got != want {
		t.Errorf("Logical(%q) = %q, %v; want %q", stmt, got, ok, want)
	}
	if _, ok := n.Logical("CREATE TRIGGER `x` AFTER INSERT ON `settings` FOR EACH ROW SET @a = 1"); ok {
		t.Error("a trigger on a single table was renamed")
	}
}

// TestStoredProgramsSlotBodies: a trigger on a table-per-slot table whose body names another
// table-per-slot table of its scheme, pinned to the row's key, names in each copy the firing
// slot's table (and its column qualifiers); a word spelled like the table that is not it, an
// unpinned statement, or a trigger on a table of another layout is refused.
func TestStoredProgramsSlotBodies(t *testing.T) {
	sent := func(sql string) ([]string, error) {
		be := newFakeBackend()
		s := fakeSession(t, shardedRouter(t, be), "app", 1)
		s.db = "shop"
		var w clientRecorder
		err := s.Query(context.Background(), sql, true, &w)
		var out []string
		for _, l := range be.takeLog() {
			if !strings.Contains(l, ": USE ") {
				out = append(out, l)
			}
		}
		return out, err
	}
	got, err := sent("CREATE TRIGGER tr AFTER UPDATE ON accounts FOR EACH ROW BEGIN INSERT INTO ledger (account_id, amount) VALUES (NEW.account_id, 1); " +
		"UPDATE ledger SET amount = ledger.amount + 1 WHERE ledger.account_id = OLD.account_id; END")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 8 {
		t.Fatalf("sent %q, want one trigger per slot table", got)
	}
	for slot, l := range got {
		name := "`tr`"
		if slot%2 == 1 {
			name = fmt.Sprintf("`tr_%04d`", slot)
		}
		want := fmt.Sprintf("s%d#%d: CREATE TRIGGER %s AFTER UPDATE ON `accounts_%04[4]d` FOR EACH ROW BEGIN INSERT INTO `ledger_%04[4]d` (account_id, amount) VALUES (NEW.account_id, 1); "+
			"UPDATE `ledger_%04[4]d` SET amount = `ledger_%04[4]d`.amount + 1 WHERE `ledger_%04[4]d`.account_id = OLD.account_id; END", slot/2, slot/2+1, name, slot)
		if l != want {
			t.Errorf("slot %d:\n got %s\nwant %s", slot, l, want)
		}
	}
	for _, tc := range []struct{ sql, reason string }{
		{"CREATE TRIGGER tr AFTER INSERT ON accounts FOR EACH ROW UPDATE ledger SET ledger = 1 WHERE account_id = NEW.account_id", "a word spelled like one"},
		{"CREATE TRIGGER tr AFTER INSERT ON accounts FOR EACH ROW DELETE FROM ledger WHERE amount < 0", "table-per-slot table ledger"},
		{"CREATE TRIGGER tr AFTER INSERT ON orders FOR EACH ROW DELETE FROM ledger WHERE account_id = NEW.user_id", "table-per-slot table ledger"},
	} {
		got, err := sent(tc.sql)
		if sqlCode(err) != sqlerr.ErNotSupportedYet || !strings.Contains(err.Error(), tc.reason) || len(got) != 0 {
			t.Errorf("%s: %v, sent %q; want 1235 naming %q", tc.sql, err, got, tc.reason)
		}
	}
}
