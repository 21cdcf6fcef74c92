package router

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/wire"
)

// TestInsertIDRule checks which insert ids of an OK packet the statement's text proves
// generated (taken without asking the backend) and which it cannot tell apart from a value
// the statement wrote.
func TestInsertIDRule(t *testing.T) {
	for _, tc := range []struct {
		sql       string
		id        uint64
		generated bool
	}{
		{"UPDATE t SET a = LAST_INSERT_ID(a + 1)", 9, true}, // not an INSERT: LAST_INSERT_ID(expr)'s value
		{"INSERT INTO t (a) VALUES (1)", 7, true},
		{"INSERT INTO t (a) VALUES (7)", 7, false}, // 7 may be the AUTO_INCREMENT column's explicit value
		{"INSERT INTO n (id, v) VALUES (2, 0)", 2, false},
		{"INSERT INTO n (id, v) VALUES (NULL, 0), (DEFAULT, 0)", 3, true},
		{"INSERT INTO n VALUES (0, 'x')", 12, true},
		{"INSERT INTO n (id, v) VALUES ('12', 0)", 12, false},
		{"INSERT INTO n (id, v) VALUES (' 12 ', 0)", 12, false},
		{"INSERT INTO n (id, v) VALUES (11.5, 0)", 12, false},   // rounds to 12
		{"INSERT INTO n (id, v) VALUES ('12abc', 0)", 5, false}, // a conversion not followed
		{"INSERT INTO n (note) VALUES ('abc')", 5, true},
		{"INSERT INTO n SET id = 4, v = 0", 4, false},
		{"INSERT INTO n SET v = 0", 4, true},
		{"REPLACE INTO n (id, v) VALUES (4, 0)", 4, false},
		{"INSERT INTO n (id, v) VALUES (1 + 1, 0)", 8, false},                        // an expression
		{"INSERT INTO n (v) VALUES (0) ON DUPLICATE KEY UPDATE v = v + 1", 8, false}, // may have updated row 8
		{"INSERT INTO n (id, v) SELECT id + 100, v FROM m", 8, false},                // values from a SELECT
		{"INSERT INTO n (id, v) VALUES (LAST_INSERT_ID(5), 0)", 5, false},            // a function
		{"INSERT IGNORE INTO n (v) VALUES (1), (2)", 5, true},
	} {
		r := insertIDRuleOf(parseOneForTest(t, tc.sql))
		if got := r.generated(tc.id); got != tc.generated {
			t.Errorf("%s: generated(%d) = %v, want %v", tc.sql, tc.id, got, tc.generated)
		}
	}
}

// TestInsertIDRuleParams checks that an execution's parameters count among the values.
func TestInsertIDRuleParams(t *testing.T) {
	r := insertIDRuleOf(parseOneForTest(t, "INSERT INTO n (id, v) VALUES (?, ?)"))
	long := func(v uint32) wire.Param {
		return wire.Param{Type: mysql.MYSQL_TYPE_LONG, Value: binary.LittleEndian.AppendUint32(nil, v)}
	}
	if !r.bind([]wire.Param{{Null: true}, long(0)}).generated(6) {
		t.Error("(NULL, 0): id 6 not taken as generated")
	}
	if r.bind([]wire.Param{long(6), long(0)}).generated(6) {
		t.Error("(6, 0): id 6 taken as generated")
	}
	if r.bind([]wire.Param{long(6)}).generated(7) {
		t.Error("a missing parameter: id 7 taken as generated")
	}
}

// TestSessionLastInsertIDExplicit: an INSERT giving the AUTO_INCREMENT column its value
// leaves LAST_INSERT_ID() as it was, though its OK packet (relayed as is) reports the value.
func TestSessionLastInsertIDExplicit(t *testing.T) {
	be := newFakeBackend()
	be.lastInsertID = 77
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "INSERT INTO shop.t (a) VALUES (1)", &w) // 77 is none of its values: generated
	be.lastInsertID, be.explicitID = 5, true
	w.Pkts = nil
	exec(t, s, "INSERT INTO shop.t (id, a) VALUES (5, 1)", &w)
	if ok, err := wire.ParseOK(w.Pkts[len(w.Pkts)-1]); err != nil || ok.LastInsertID != 5 {
		t.Errorf("OK packet %v (%v), want insert id 5 relayed", ok, err)
	}
	exec(t, s, "SELECT LAST_INSERT_ID()", &w)
	be.explicitID = false
	exec(t, s, "INSERT INTO shop.t (id, a) VALUES (NULL, 5)", &w) // 5 generated, and one of its values
	exec(t, s, "SELECT LAST_INSERT_ID()", &w)
	wantLog(t, be,
		"s_shop#1: INSERT INTO `shop_0`.`t` (`a`) VALUES (1)",
		"s_shop#1: INSERT INTO `shop_0`.`t` (`id`,`a`) VALUES (5,1)",
		"s_shop#1: SELECT LAST_INSERT_ID()",
		"s_shop#1: SELECT IFNULL(CAST(77 AS UNSIGNED), LAST_INSERT_ID()) AS `LAST_INSERT_ID()`",
		"s_shop#1: INSERT INTO `shop_0`.`t` (`id`,`a`) VALUES (NULL,5)",
		"s_shop#1: SELECT LAST_INSERT_ID()",
		"s_shop#1: SELECT IFNULL(CAST(5 AS UNSIGNED), LAST_INSERT_ID()) AS `LAST_INSERT_ID()`",
	)
}

// TestSessionRowCountAnswered: statements the proxy answers itself set ROW_COUNT() as
// MariaDB does: -1 after an error (ROLLBACK TO an unknown savepoint, refused by the proxy)
// or rows, 0 after an OK (USE).
func TestSessionRowCountAnswered(t *testing.T) {
	be := newFakeBackend()
	be.lastInsertID = 0
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "BEGIN", &w)
	exec(t, s, "INSERT INTO shop.t (a) VALUES (1)", &w)
	if err := s.Query(context.Background(), "ROLLBACK TO SAVEPOINT nosuch", false, &w); sqlCode(err) != 1305 {
		t.Fatalf("ROLLBACK TO SAVEPOINT nosuch: %v, want 1305", err)
	}
	exec(t, s, "SELECT ROW_COUNT()", &w)
	exec(t, s, "INSERT INTO shop.t (a) VALUES (2)", &w)
	exec(t, s, "USE shop", &w)
	exec(t, s, "SELECT ROW_COUNT()", &w)
	exec(t, s, "SELECT ROW_COUNT()", &w) // after rows
	exec(t, s, "COMMIT", &w)
	wantLog(t, be,
		"s_shop#1: BEGIN",
		"s_shop#1: INSERT INTO `shop_0`.`t` (`a`) VALUES (1)",
		"s_shop#1: SELECT IFNULL(-1, ROW_COUNT()) AS `ROW_COUNT()`",
		"s_shop#1: INSERT INTO `shop_0`.`t` (`a`) VALUES (2)",
		"s_shop#1: USE shop_0",
		"s_shop#1: SELECT IFNULL(0, ROW_COUNT()) AS `ROW_COUNT()`",
		"s_shop#1: SELECT IFNULL(-1, ROW_COUNT()) AS `ROW_COUNT()`",
		"s_shop#1: COMMIT",
	)
}

// TestSessionRowCountRefusedPrepare: a prepare the backend refuses is the last statement,
// as on MariaDB: ROW_COUNT() -1 and the error as its diagnostics.
func TestSessionRowCountRefusedPrepare(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "INSERT INTO shop.t (a) VALUES (1)", &w)
	if _, err := s.Prepare(context.Background(), "INSERT INTO shop.fail (a) VALUES (?)"); sqlCode(err) != 1146 {
		t.Fatalf("prepare: %v, want 1146", err)
	}
	if s.diag.last.RowCount != -1 || s.diag.last.Errors != 1 {
		t.Errorf("after a refused prepare: ROW_COUNT() %d, %d errors; want -1 and the error", s.diag.last.RowCount, s.diag.last.Errors)
	}
}

// TestSplitInsertExplicitID: a split INSERT giving its ids explicitly relays the first
// row's id in its OK but leaves LAST_INSERT_ID() as it was; one whose ids were generated
// sets it.
func TestSplitInsertExplicitID(t *testing.T) {
	for _, explicit := range []bool{true, false} {
		be := newFakeBackend()
		be.lastInsertID, be.explicitID = 7, explicit
		s := shardedFakeSession(t, be, nil, nil)
		s.ids.last = 3
		var w clientRecorder
		exec(t, s, "INSERT INTO orders (id, user_id) VALUES (7, 1), (7, 2)", &w)
		oks := w.oks()
		if len(oks) != 1 || oks[0].LastInsertID != 7 {
			t.Fatalf("explicit %v: OK packets %+v, want one with insert id 7", explicit, oks)
		}
		want := uint64(7)
		if explicit {
			want = 3
		}
		if s.ids.last != want {
			t.Errorf("explicit %v: LAST_INSERT_ID() %d, want %d", explicit, s.ids.last, want)
		}
	}
}
