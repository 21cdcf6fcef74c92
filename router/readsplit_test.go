package router

import (
	"context"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

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
