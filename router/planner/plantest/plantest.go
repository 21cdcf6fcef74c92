// Package plantest holds what the planner's tests and the router's share: the rules the
// golden plan fixtures are planned under, the fixtures' case shape and where they live
// (router/planner/testdata). It is imported by tests only.
package plantest

import (
	"path/filepath"
	"runtime"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
)

// Case is one golden plan case: a statement planned for a session (database, user, last
// insert id) and the plan expected (the primitive's description: what each shard is sent,
// the merge or commit, the statement's flags) or the error.
type Case struct {
	Comment      string  `json:"comment"`
	Query        string  `json:"query"`
	DB           string  `json:"db,omitempty"`
	User         string  `json:"user,omitempty"` // default "app"
	LastInsertID uint64  `json:"last_insert_id,omitempty"`
	Params       []int64 `json:"params,omitempty"` // values bound to ? (as BIGINT) of a prepared statement
	// Bound: the statement prepared without params and executed with them is routed by the
	// route planned at prepare time (bind variables filled in, no parse, no plan), to the
	// same shard with the same SQL as planning it with its params.
	Bound bool `json:"bound,omitempty"`

	// Plan is the plan's description (plan.Primitive.Describe); for an EXPLAIN / ANALYZE
	// of a statement on one shard, the route of the EXPLAIN.
	Plan  *plan.Description `json:"plan,omitempty"`
	Error string            `json:"error,omitempty"`
	// Explain lists what each shard is asked for an EXPLAIN / ANALYZE whose statement runs
	// on several shards ("shard: SQL"; the answers are labelled by shard), and for a LOCK
	// TABLES on sharded or broadcast tables, in locking order.
	Explain []string `json:"explain,omitempty"`
}

// Fixture is the path of the golden fixture file (plan_sharded.json, plan_passthrough.json,
// plan_prepared.json).
func Fixture(file string) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "testdata", file)
}

// passwordHash is the mysql_native_password hash of "pw".
const passwordHash = "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9"

// PassthroughConfig has three logical databases, each on its own shard (no sharded
// tables): shop on shard s_shop (physical shop_0), blog on s_blog (blog_p), crm on s_crm
// (physical crm: no renaming needed). User app may use all, blogger only blog, shopper
// shop and crm.
func PassthroughConfig() *rules.Config {
	return &rules.Config{
		Users: []rules.UserConfig{
			{Name: "app", PasswordHash: passwordHash},
			{Name: "blogger", PasswordHash: passwordHash, Databases: []string{"blog"}},
			{Name: "shopper", PasswordHash: passwordHash, Databases: []string{"shop", "crm"}},
		},
		Backends: []rules.BackendConfig{
			{Name: "b1", Addr: "10.0.0.1:3306", User: "proxy", Password: "pw"},
			{Name: "b2", Addr: "10.0.0.2:3306", User: "proxy", Password: "pw"},
			{Name: "b3", Addr: "10.0.0.3:3306", User: "proxy", Password: "pw"},
		},
		Shards: []rules.ShardConfig{
			{Name: "s_shop", Primary: "b1", Database: "shop_0"},
			{Name: "s_blog", Primary: "b2", Database: "blog_p"},
			{Name: "s_crm", Primary: "b3", Database: "crm"},
		},
		Databases: []rules.DatabaseConfig{
			{Name: "shop", DefaultShard: "s_shop"},
			{Name: "blog", DefaultShard: "s_blog"},
			{Name: "crm", DefaultShard: "s_crm"},
		},
	}
}

// ShardedConfig is one logical database, shop, over four shards (physical databases
// shop_s0..shop_s3) with the demo's kinds of tables: orders and order_items hashed by
// user_id over 4 slots (one per shard); accounts and ledger by account_id mod 8 with a
// physical table per slot (slots 0-1 on s0, 2-3 on s1, 4-5 on s2, 6-7 on s3); events by
// ranges of id (below 100 on s0, 100-199 on s1, from 200 on s2; UPDATE/DELETE without WHERE
// forbidden); visits by month of
// visited_on (before 2026 on s0, first half of 2026 on s1, from July 2026 on s2); currencies broadcast;
// settings and everything unlisted single on the default shard s0.
func ShardedConfig() *rules.Config {
	pw := passwordHash
	c := &rules.Config{
		Users: []rules.UserConfig{{Name: "app", PasswordHash: pw}},
		Schemes: []rules.SchemeConfig{
			{Name: "by_user", Function: "hash", Slots: 4, Shards: []string{"s0", "s1", "s2", "s3"}},
			{Name: "by_account", Function: "mod", Slots: 8, Shards: []string{"s0", "s1", "s2", "s3"}},
			{Name: "by_id", Function: "range", Ranges: []rules.RangeConfig{
				{To: "100", Shard: "s0"}, {From: "100", To: "200", Shard: "s1"}, {From: "200", Shard: "s2"},
			}},
			{Name: "by_month", Function: "date", Unit: "month", Ranges: []rules.RangeConfig{
				{To: "2026-01-01", Shard: "s0"}, {From: "2026-01-01", To: "2026-07-01", Shard: "s1"}, {From: "2026-07-01", Shard: "s2"},
			}},
		},
		Databases: []rules.DatabaseConfig{{
			Name: "shop", DefaultShard: "s0",
			Tables: []rules.TableConfig{
				{Name: "orders", Kind: rules.KindSharded, Key: "user_id", Scheme: "by_user"},
				{Name: "order_items", Kind: rules.KindSharded, Key: "user_id", Scheme: "by_user"},
				{Name: "accounts", Kind: rules.KindSharded, Key: "account_id", Scheme: "by_account", TablePerSlot: true},
				{Name: "ledger", Kind: rules.KindSharded, Key: "account_id", Scheme: "by_account", TablePerSlot: true},
				{Name: "events", Kind: rules.KindSharded, Key: "id", Scheme: "by_id", FullTableWrites: "forbid"},
				{Name: "visits", Kind: rules.KindSharded, Key: "visited_on", Scheme: "by_month"},
				{Name: "currencies", Kind: rules.KindBroadcast},
				{Name: "settings", Kind: rules.KindSingle},
			},
		}},
	}
	for i := range 4 {
		n := string(rune('0' + i))
		c.Backends = append(c.Backends, rules.BackendConfig{Name: "b" + n, Addr: "10.0.0." + n + ":3306", User: "proxy", Password: "pw"})
		c.Shards = append(c.Shards, rules.ShardConfig{Name: "s" + n, Primary: "b" + n, Database: "shop_s" + n})
	}
	return c
}
