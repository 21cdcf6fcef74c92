package rules_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/rules"
)

// Vectors from the reference xxHash64 (python3-xxhash, Debian's package), seed 0, over the
// canonical bytes HashFunc documents: 8-byte little-endian integers, lower-cased UTF-8 text.
func TestHashKeyVectors(t *testing.T) {
	cases := []struct {
		v    rules.Value
		want uint64
	}{
		{rules.IntValue(0), 0x34c96acdcadb1bbb},
		{rules.IntValue(1), 0x9f29cb17a2a49995},
		{rules.IntValue(-1), 0x85d136adb773c6c9},
		{rules.IntValue(42), 0xb556806fb6d14353},
		{rules.IntValue(1000003), 0x17253d139b5ce469},
		{rules.IntValue(9223372036854775807), 0xff70cc60366e770c},
		{rules.StrValue("42"), 0xb556806fb6d14353}, // text holding an integer hashes as it
		{rules.StrValue(""), 0xef46db3751d8e999},
		{rules.StrValue("abc"), 0x44bc2cf5ad770999},
		{rules.StrValue("ABC"), 0x44bc2cf5ad770999},
		{rules.StrValue("alice"), 0x73a3ea485f2e6049},
		{rules.StrValue("Ünïcode"), 0xaff510094968e696},
		{rules.StrValue("ORDER-7"), 0xbe141ed2a1d913c9},
	}
	for _, c := range cases {
		if got := rules.HashKey(c.v); got != c.want {
			t.Errorf("HashKey(%v) = %#x, want %#x", c.v, got, c.want)
		}
	}
}

func TestFuncSlots(t *testing.T) {
	rng := rules.RangeFunc{Bounds: []rules.Bound{
		{To: 100, HasTo: true},
		{From: 100, To: 1000, HasFrom: true, HasTo: true},
		{From: 2000, HasFrom: true},
	}}
	date := rules.DateFunc{Unit: rules.UnitMonth, Range: rules.RangeFunc{Bounds: []rules.Bound{
		{From: 2024 * 12, To: 2025 * 12, HasFrom: true, HasTo: true},
		{From: 2025 * 12, HasFrom: true},
	}}}
	cases := []struct {
		name string
		f    rules.Func
		v    rules.Value
		want int
		err  bool
	}{
		{"hash int", rules.HashFunc{N: 16}, rules.IntValue(42), int(0xb556806fb6d14353 % 16), false},
		{"hash null", rules.HashFunc{N: 16}, rules.Value{Null: true}, 0, true},
		{"mod", rules.ModFunc{N: 4}, rules.IntValue(10), 2, false},
		{"mod negative", rules.ModFunc{N: 4}, rules.IntValue(-1), 3, false},
		{"mod numeric text", rules.ModFunc{N: 4}, rules.StrValue("7"), 3, false},
		{"mod text", rules.ModFunc{N: 4}, rules.StrValue("x"), 0, true},
		{"range low open", rng, rules.IntValue(-5), 0, false},
		{"range bound inclusive", rng, rules.IntValue(100), 1, false},
		{"range top open", rng, rules.IntValue(1 << 40), 2, false},
		{"range gap", rng, rules.IntValue(1500), 0, true},
		{"date month", date, rules.StrValue("2024-07-31 23:59:59"), 0, false},
		{"date next year", date, rules.StrValue("2025-01-01"), 1, false},
		{"date before", date, rules.StrValue("2023-12-31"), 0, true},
		{"date garbage", date, rules.StrValue("yesterday"), 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.f.Slot(c.v)
			if c.err {
				if !errors.Is(err, rules.ErrNoSlot) {
					t.Fatalf("Slot(%v) = %d, %v; want ErrNoSlot", c.v, got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("Slot(%v) = %d, %v; want %d", c.v, got, err, c.want)
			}
		})
	}
}

const shardedBase = `
users: [{name: u, password_hash: "*0123456789ABCDEF0123456789ABCDEF01234567"}]
backends: [{name: b0, addr: "127.0.0.1:3306", user: root}]
shards:
  - {name: s0, primary: b0, database: shop_0}
  - {name: s1, primary: b0, database: shop_1}
  - {name: s2, primary: b0, database: shop_2}
  - {name: s3, primary: b0, database: shop_3}
`

func TestShardedLayout(t *testing.T) {
	cfg := shardedBase + `
schemes:
  - {name: by_user, function: hash, slots: 8, shards: [s0, s1, s2, s3]}
  - {name: by_id, function: range, ranges: [{to: "100", shard: s0}, {from: "100", shard: s1}]}
databases:
  - name: shop
    default_shard: s0
    tables:
      - {name: orders, kind: sharded, key: User_ID, scheme: by_user, table_per_slot: true}
      - {name: accounts, kind: sharded, key: id, scheme: by_id}
      - {name: currencies, kind: broadcast}
`
	c, err := rules.Parse([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	s, err := rules.Build(c)
	if err != nil {
		t.Fatal(err)
	}
	db, _ := s.Database("shop")
	orders := db.Table("orders")
	if orders.Key != "user_id" || orders.Kind != rules.KindSharded {
		t.Fatalf("orders = %+v", orders)
	}
	ps := orders.Placements()
	if len(ps) != 8 || ps[7].Table != "orders_0007" || ps[7].Shard.Name != "s3" || ps[2].Shard.Name != "s1" {
		t.Errorf("orders placements = %+v", ps)
	}
	if got := db.Table("accounts").Placements(); len(got) != 2 || got[1].Table != "accounts" {
		t.Errorf("accounts placements = %+v", got)
	}
	if got := db.Table("currencies").Placements(); len(got) != 4 {
		t.Errorf("currencies on %d shards, want every shard of the database (4)", len(got))
	}
	if got := db.Table("settings"); got.Kind != rules.KindSingle || got.Placements()[0].Shard.Name != "s0" {
		t.Errorf("unlisted table = %+v", got)
	}
}

func TestShardedValidation(t *testing.T) {
	cases := []struct {
		name, tail, frag string
	}{
		{"unknown function", `schemes: [{name: x, function: crc, shards: [s0]}]`, `function "crc"`},
		{"unknown shard", `schemes: [{name: x, function: hash, shards: [s9]}]`, `shard "s9" is not defined`},
		{"slots below shards", `schemes: [{name: x, function: mod, slots: 2, shards: [s0, s1, s2]}]`, "slots 2"},
		{"duplicate shard", `schemes: [{name: x, function: mod, shards: [s0, s0]}]`, "listed twice"},
		{"overlapping ranges", `schemes: [{name: x, function: range, ranges: [{to: "10", shard: s0}, {from: "5", to: "20", shard: s1}]}]`, "overlaps"},
		{"open middle range", `schemes: [{name: x, function: range, ranges: [{to: "10", shard: s0}, {from: "10", shard: s1}, {from: "20", shard: s2}]}]`, "only the last range"},
		{"empty range", `schemes: [{name: x, function: range, ranges: [{from: "10", to: "10", shard: s0}]}]`, "not below"},
		{"date without unit", `schemes: [{name: x, function: date, ranges: [{from: "2024-01-01", shard: s0}]}]`, "unit"},
		{"bad date", `schemes: [{name: x, function: date, unit: month, ranges: [{from: "2024-13-01", shard: s0}]}]`, "not a date"},
		{"hash with ranges", `schemes: [{name: x, function: hash, shards: [s0], ranges: [{to: "1", shard: s0}]}]`, "not ranges"},
		{"duplicate scheme", `schemes: [{name: x, function: mod, shards: [s0]}, {name: x, function: mod, shards: [s1]}]`, "defined twice"},
		{"table without key", "databases: [{name: shop, default_shard: s0, tables: [{name: t, kind: sharded, scheme: x}]}]\nschemes: [{name: x, function: mod, shards: [s0]}]", "needs a key"},
		{"table unknown scheme", "databases: [{name: shop, default_shard: s0, tables: [{name: t, kind: sharded, key: k, scheme: nope}]}]", `scheme "nope"`},
		{"broadcast with key", "databases: [{name: shop, default_shard: s0, tables: [{name: t, kind: broadcast, key: k}]}]", "takes no key"},
		{"unknown kind", "databases: [{name: shop, default_shard: s0, tables: [{name: t, kind: replicated}]}]", `kind "replicated"`},
		{"duplicate table", "databases: [{name: shop, default_shard: s0, tables: [{name: t}, {name: t}]}]", "defined twice"},
		{"shard shared by databases", "databases: [{name: shop, default_shard: s0}, {name: fin, default_shard: s0}]", "holds rows of databases"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			yaml := shardedBase + c.tail + "\n"
			if !strings.Contains(c.tail, "databases:") {
				yaml += "databases: [{name: shop, default_shard: s0}]\n"
			}
			cfg, err := rules.Parse([]byte(yaml))
			if err != nil {
				t.Fatal(err)
			}
			_, err = rules.Build(cfg)
			if !errors.Is(err, rules.ErrInvalid) || !strings.Contains(err.Error(), c.frag) {
				t.Fatalf("Build error = %v; want ErrInvalid containing %q", err, c.frag)
			}
		})
	}
}
