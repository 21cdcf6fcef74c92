package rules_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/rules"
)

// Vectors from the reference xxHash64 (python3-xxhash, Debian's package), seed 0, over the
// canonical bytes HashFunc documents: 8-byte little-endian integers, and for other text the
// collation key: MariaDB 10.11's WEIGHT_STRING(s COLLATE c) (asked of our image) without
// the trailing space weights.
func TestHashKeyVectors(t *testing.T) {
	gen, bin, uni := rules.Collation{}, mustCollation(t, rules.CollationBin), mustCollation(t, rules.CollationUnicodeCI)
	cases := []struct {
		v    rules.Value
		c    rules.Collation
		want uint64
	}{
		{rules.IntValue(0), gen, 0x34c96acdcadb1bbb},
		{rules.IntValue(1), gen, 0x9f29cb17a2a49995},
		{rules.IntValue(-1), gen, 0x85d136adb773c6c9},
		{rules.IntValue(42), gen, 0xb556806fb6d14353},
		{rules.IntValue(42), bin, 0xb556806fb6d14353},
		{rules.IntValue(1000003), gen, 0x17253d139b5ce469},
		{rules.IntValue(9223372036854775807), gen, 0xff70cc60366e770c},
		{rules.StrValue("42"), gen, 0xb556806fb6d14353}, // text holding an integer hashes as it
		{rules.StrValue("42 "), gen, 0xb556806fb6d14353},
		{rules.StrValue(""), gen, 0xef46db3751d8e999},
		{rules.StrValue("   "), gen, 0xef46db3751d8e999},
		{rules.StrValue("abc"), gen, 0x902f552ef538dc67},  // 004100420043
		{rules.StrValue("ABC "), gen, 0x902f552ef538dc67}, // 0041004200430020, space dropped
		{rules.StrValue("Abc"), gen, 0x902f552ef538dc67},
		{rules.StrValue("é"), gen, 0xba96ec8eff33a352}, // 0045
		{rules.StrValue("e"), gen, 0xba96ec8eff33a352},
		{rules.StrValue("É"), gen, 0xba96ec8eff33a352},
		{rules.StrValue("ß"), gen, 0x4b04a71ebb38549b}, // 0053, as "s"
		{rules.StrValue("s"), gen, 0x4b04a71ebb38549b},
		{rules.StrValue("中文"), gen, 0x7ae67589e4c626b9}, // 4e2d6587
		{rules.StrValue("😀"), gen, 0x5d24a14c32a9e733},  // fffd: every supplementary character
		{rules.StrValue("🙂"), gen, 0x5d24a14c32a9e733},
		{rules.StrValue("alice"), gen, 0x3b0f7ee0a94e2845},
		{rules.StrValue("Ünïcode"), gen, 0x940a4b0cc575cd40},
		{rules.StrValue("ORDER-7"), gen, 0xda863b400e219146},
		{rules.StrValue("a\t"), gen, 0xddc8fdec78e8c13c}, // a tab is not a pad space
		{rules.StrValue("Straße"), gen, 0x361481db547a1012},
		{rules.StrValue("abc"), bin, 0xf2af5cb2d212d674}, // 000061000062000063
		{rules.StrValue("ABC "), bin, 0xcd08c1ba873764f9},
		{rules.StrValue("Abc"), bin, 0x66b1d470c0c7ba60},
		{rules.StrValue("é"), bin, 0x094759ff2c041150},
		{rules.StrValue("e"), bin, 0x852fcff3403d2276},
		{rules.StrValue("ß"), bin, 0xaa8551fffa6f1be6},
		{rules.StrValue("中文"), bin, 0x8056976591daa392},
		{rules.StrValue("😀"), bin, 0x401796099369d3a6}, // 01f600
		{rules.StrValue("🙂"), bin, 0xdb87322ca003d843},
		{rules.StrValue("   "), bin, 0xef46db3751d8e999},
		{rules.StrValue("Straße"), bin, 0x3d722948596ac5dd},
		{rules.StrValue("abc"), uni, 0x8ec96f224e71c20d}, // 0e330e4a0e60
		{rules.StrValue("ABC "), uni, 0x8ec96f224e71c20d},
		{rules.StrValue("é"), uni, 0xe2149e71a88f5ec3}, // 0e8b
		{rules.StrValue("e"), uni, 0xe2149e71a88f5ec3},
		{rules.StrValue("ß"), uni, 0x903f826c1e904878}, // 0fea0fea, as "ss"
		{rules.StrValue("SS"), uni, 0x903f826c1e904878},
		{rules.StrValue("Straße"), uni, 0x323e75cb91f18d06},
		{rules.StrValue("STRASSE"), uni, 0x323e75cb91f18d06},
		{rules.StrValue("中文"), uni, 0xdd19a8ab9756e561}, // fb40ce2dfb40e587: implicit weights
		{rules.StrValue("😀"), uni, 0x5d24a14c32a9e733},
		{rules.StrValue("ﬁ"), uni, 0xdcd59500562eaec0}, // 0eb90efb, as "fi"
		{rules.StrValue("Ωμέγα"), uni, 0xd96521a9b13901ea},
		{rules.StrValue("a\u00a0"), uni, 0x77a6873405a8e341}, // 0e33 0209: a no-break space pads
		{rules.StrValue("a\u0301"), uni, 0x77a6873405a8e341}, // 0e33: the accent is ignorable
		{rules.StrValue("   "), uni, 0xef46db3751d8e999},
		{rules.StrValue("４２"), uni, 0xb556806fb6d14353}, // 0e2d0e2b = "42": the integer 42
		{rules.StrValue("٤٢"), uni, 0xb556806fb6d14353},
		{rules.StrValue("４２"), gen, 0xad400cf42a14c5d9}, // ff14ff12: text under general_ci
	}
	for _, c := range cases {
		if got := rules.HashKey(c.v, c.c); got != c.want {
			t.Errorf("HashKey(%v, %s) = %#x, want %#x", c.v, c.c.Name(), got, c.want)
		}
	}
}

func mustCollation(t *testing.T, name string) rules.Collation {
	t.Helper()
	c, err := rules.LookupCollation(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
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
  - {name: by_code, function: hash, shards: [s0, s1], collation: utf8mb4_bin}
  - {name: by_id, function: range, ranges: [{to: "100", shard: s0}, {from: "100", shard: s1}]}
databases:
  - name: shop
    default_shard: s0
    tables:
      - {name: orders, kind: sharded, key: User_ID, scheme: by_user, table_per_slot: true}
      - {name: accounts, kind: sharded, key: id, scheme: by_id}
      - {name: currencies, kind: broadcast}
      - {name: coupons, kind: sharded, key: code, scheme: by_code}
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
	if f, ok := orders.Scheme.Func.(rules.HashFunc); !ok || f.Collation.Name() != rules.CollationGeneralCI {
		t.Errorf("orders hash = %#v, want the default collation utf8mb4_general_ci", orders.Scheme.Func)
	}
	if f, ok := db.Table("coupons").Scheme.Func.(rules.HashFunc); !ok || f.Collation.Name() != rules.CollationBin {
		t.Errorf("coupons hash = %#v, want utf8mb4_bin", db.Table("coupons").Scheme.Func)
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
		{"unknown collation", `schemes: [{name: x, function: hash, shards: [s0], collation: utf8mb4_unicode_520_ci}]`, `collation "utf8mb4_unicode_520_ci"`},
		{"mod with collation", `schemes: [{name: x, function: mod, shards: [s0], collation: utf8mb4_bin}]`, "not a collation"},
		{"range with collation", `schemes: [{name: x, function: range, collation: utf8mb4_bin, ranges: [{to: "10", shard: s0}]}]`, "takes no collation"},
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
