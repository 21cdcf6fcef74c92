package router

import (
	"context"
	"testing"
	"time"

	"github.com/pingcap/tidb/pkg/parser"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
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

func TestMergeGTIDs(t *testing.T) {
	cases := []struct{ a, b, want string }{
		{"", "0-1-42", "0-1-42"},
		{"0-1-42", "0-1-17", "0-1-42"}, // an older GTID left on a pooled connection
		{"0-1-42", "0-2-43", "0-2-43"},
		{"0-1-42", "1-3-7", "0-1-42,1-3-7"},
		{"0-1-42,1-3-7", "1-3-9", "0-1-42,1-3-9"},
		{"", "garbage", gtidUnknown},
		{"0-1-42", "x-1-50", "0-1-42"},
		{"0-1-42", " 0-1-50 ", "0-1-50"},
	}
	for _, c := range cases {
		if got := mergeGTIDs(c.a, c.b); got != c.want {
			t.Errorf("mergeGTIDs(%q, %q) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
}

// TestReadStateAcquireReplica: a replica is asked only for a statement the split sends
// there, of a backend serving replicas, on a shard whose last write is known; it is asked
// to have applied that write.
func TestReadStateAcquireReplica(t *testing.T) {
	ctx := context.Background()
	be := &replicaFake{fakeBackend: newFakeBackend(), reads: map[string]ReplicaRead{}}
	s1, s2 := &rules.Shard{Name: "s1"}, &rules.Shard{Name: "s2"}
	rs := readState{gtids: map[string]string{"s1": "0-1-5", "s2": gtidUnknown}}
	if _, ok, _ := rs.acquireReplica(ctx, be, s1); ok {
		t.Error("a statement the split keeps on the primary went to a replica")
	}
	rs.replica = rules.ReadSplit{Enabled: true, MaxLag: time.Second}
	if _, ok, _ := rs.acquireReplica(ctx, be, s2); ok {
		t.Error("a shard whose last write is unknown was read on a replica")
	}
	if _, ok, _ := rs.acquireReplica(ctx, be.fakeBackend, s1); ok {
		t.Error("a backend without replicas was asked for one")
	}
	c, ok, err := rs.acquireReplica(ctx, be, s1)
	if err != nil || !ok || c.Server() != "s1r" {
		t.Fatalf("replica read: %v, %v", ok, err)
	}
	be.Release(c)
	if got := be.reads["s1"]; got.After != "0-1-5" || got.MaxLag != time.Second {
		t.Errorf("asked %+v, want after 0-1-5 within 1s", got)
	}
}

// TestReadStateGTIDs: a write's GTID is read only under a split, after a statement that may
// have written, outside a transaction; one that cannot be read, and the shards of a
// multi-shard write, keep their reads on the primary.
func TestReadStateGTIDs(t *testing.T) {
	ctx := context.Background()
	be := newFakeBackend()
	shard := &rules.Shard{Name: "s0"}
	c, _ := be.Acquire(ctx, shard, rules.RolePrimary)
	split := rules.ReadSplit{Enabled: true}
	var rs readState
	rs.trackGTID(ctx, rules.ReadSplit{}, shard, c, nil)
	rs.readOnly = true
	rs.trackGTID(ctx, split, shard, c, nil)
	rs.readOnly = false
	c.State().SetStatus(wire.StatusInTrans)
	rs.trackGTID(ctx, split, shard, c, nil)
	c.State().SetStatus(wire.StatusAutocommit)
	rs.trackGTID(ctx, split, shard, c, sqlerr.New(sqlerr.ErBadDB, "x"))
	if log := be.takeLog(); len(log) != 0 || rs.gtids != nil {
		t.Fatalf("no GTID to read: asked %q, gtids %v", log, rs.gtids)
	}
	rs.trackGTID(ctx, split, shard, c, nil) // the fake answers one column: not a GTID
	if log := be.takeLog(); len(log) != 1 || rs.gtids["s0"] != gtidUnknown {
		t.Errorf("after a write: asked %q, gtids %v", log, rs.gtids)
	}
	rs = readState{gtids: map[string]string{"s1": "0-1-5"}}
	rs.forgetGTIDs(rules.ReadSplit{}, []plan.Branch{{Shard: &rules.Shard{Name: "s1"}}})
	if rs.gtids["s1"] != "0-1-5" {
		t.Errorf("without a split: %v", rs.gtids)
	}
	rs.forgetGTIDs(split, []plan.Branch{{Shard: &rules.Shard{Name: "s1"}}, {Shard: shard}})
	if rs.gtids["s1"] != gtidUnknown || rs.gtids["s0"] != gtidUnknown {
		t.Errorf("after a multi-shard write: %v", rs.gtids)
	}
}
