package router

import (
	"context"
	"slices"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// lockLog is a lockExec that records what it ran, and fails on the shards of fail.
type lockLog struct {
	ran  []string
	fail map[string]bool
}

func (l *lockLog) exec() lockExec {
	return lockExec{
		run: func(_ context.Context, shard *rules.Shard, sql string) error {
			l.ran = append(l.ran, shard.Name+": "+sql)
			if l.fail[shard.Name] {
				return sqlerr.New(sqlerr.ErLockWaitTimeout, "Lock wait timeout exceeded")
			}
			return nil
		},
		unlock: func(_ context.Context, shard *rules.Shard) error {
			l.ran = append(l.ran, shard.Name+": UNLOCK TABLES")
			return nil
		},
	}
}

func lockTargets(names ...string) []planner.LockTarget {
	var ts []planner.LockTarget
	for _, n := range names {
		ts = append(ts, planner.LockTarget{Shard: &rules.Shard{Name: n}, SQL: "LOCK TABLES t_" + n + " WRITE"})
	}
	return ts
}

// TestTableLocksReplace: a LOCK TABLES unlocks the shards only the earlier one locked, then
// locks its own shards in order; UNLOCK TABLES gives every lock up.
func TestTableLocksReplace(t *testing.T) {
	ctx := context.Background()
	var l tableLocks
	var log lockLog
	if err := l.replace(ctx, log.exec(), lockTargets("s0", "s1")); err != nil || !l.locked() {
		t.Fatalf("first LOCK TABLES: %v, locked %v", err, l.locked())
	}
	if err := l.replace(ctx, log.exec(), lockTargets("s1", "s2")); err != nil {
		t.Fatal(err)
	}
	if err := l.release(ctx, log.exec()); err != nil || l.locked() {
		t.Fatalf("UNLOCK TABLES: %v, locked %v", err, l.locked())
	}
	want := []string{
		"s0: LOCK TABLES t_s0 WRITE", "s1: LOCK TABLES t_s1 WRITE",
		"s0: UNLOCK TABLES", "s1: LOCK TABLES t_s1 WRITE", "s2: LOCK TABLES t_s2 WRITE",
		"s1: UNLOCK TABLES", "s2: UNLOCK TABLES",
	}
	if !slices.Equal(log.ran, want) {
		t.Errorf("ran\n %q\nwant\n %q", log.ran, want)
	}
}

// TestTableLocksTakeFails: when a shard's lock fails, the shards locked before it are
// unlocked and the session holds no locks.
func TestTableLocksTakeFails(t *testing.T) {
	var l tableLocks
	log := lockLog{fail: map[string]bool{"s1": true}}
	err := l.take(context.Background(), log.exec(), lockTargets("s0", "s1", "s2"))
	if sqlCode(err) != sqlerr.ErLockWaitTimeout || l.locked() {
		t.Fatalf("take: %v, locked %v", err, l.locked())
	}
	want := []string{"s0: LOCK TABLES t_s0 WRITE", "s1: LOCK TABLES t_s1 WRITE", "s0: UNLOCK TABLES"}
	if !slices.Equal(log.ran, want) {
		t.Errorf("ran %q, want %q", log.ran, want)
	}
}
