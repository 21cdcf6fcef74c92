package router

import (
	"context"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// benchPrepared prepares sql in a session over the recording fake backend (database shop)
// and executes it, cycling over 8 sets of values whose i-th value is param(set, i).
func benchPrepared(b *testing.B, sql string, param func(set, i int) wire.Param) {
	be := newFakeBackend()
	snap, err := rules.Build(plantest.ShardedConfig())
	if err != nil {
		b.Fatal(err)
	}
	r := New(Options{Rules: rules.NewStore(snap), Backend: be})
	s, err := r.NewSession(context.Background(), SessionInfo{ConnID: 1, User: "app", Collation: 45})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.db = "shop"
	ctx := context.Background()
	st, err := s.Prepare(ctx, sql)
	if err != nil {
		b.Fatal(err)
	}
	params := make([][]wire.Param, 8)
	for set := range params {
		for i := range st.NumParams() {
			params[set] = append(params[set], param(set, i))
		}
	}
	var w clientRecorder
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := s.Execute(ctx, st, params[i%len(params)], &w); err != nil {
			b.Fatal(err)
		}
		if i%64 == 0 {
			w.reset()
			be.takeLog()
		}
	}
}

// BenchmarkPreparedPointSelect executes a prepared point select whose shard depends on its
// ? (the key cycles over every slot) through a session over the recording fake backend: the
// router's own cost per EXECUTE (planning, routing, relaying), without network or MariaDB.
func BenchmarkPreparedPointSelect(b *testing.B) {
	for _, q := range []struct{ name, sql string }{
		{"hashed", "SELECT * FROM orders WHERE user_id = ?"},
		{"table_per_slot", "SELECT owner FROM accounts WHERE account_id = ? AND owner <> 'x'"},
	} {
		b.Run(q.name, func(b *testing.B) {
			benchPrepared(b, q.sql, func(set, _ int) wire.Param { return intParam(int64(set)) })
		})
	}
}

// BenchmarkPreparedScatterSelect executes prepared SELECTs that run on several shards (all
// of them, or those an IN list of ? keys names) and merge their rows, through a session over
// the recording fake backend: the router's own cost per EXECUTE (planning or filling in the
// shards' statements, fanning out, merging), without network or MariaDB.
func BenchmarkPreparedScatterSelect(b *testing.B) {
	for _, q := range []struct{ name, sql string }{
		{"range", "SELECT * FROM orders WHERE amount > ? AND note <> ?"},
		{"in_list", "SELECT * FROM orders WHERE user_id IN (?, ?, ?)"},
		{"limit", "SELECT * FROM orders WHERE amount > ? LIMIT ?"},
	} {
		b.Run(q.name, func(b *testing.B) {
			benchPrepared(b, q.sql, func(set, i int) wire.Param { return intParam(int64(set + 1000*i)) })
		})
	}
}

// BenchmarkPreparedWrite executes prepared writes on several shards (a broadcast table's
// copies; the slots an IN list of ? keys names) through a session over the recording fake
// backend: the router's own cost per EXECUTE (planning or handing the branches their
// values, the two-phase commit's statements), without network or MariaDB.
func BenchmarkPreparedWrite(b *testing.B) {
	for _, q := range []struct{ name, sql string }{
		{"broadcast", "UPDATE currencies SET rate = ? WHERE code = ?"},
		{"in_list", "UPDATE orders SET note = ? WHERE user_id IN (?, ?)"},
	} {
		b.Run(q.name, func(b *testing.B) {
			benchPrepared(b, q.sql, func(set, i int) wire.Param { return intParam(int64(set + 1000*i)) })
		})
	}
}
