package rules_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/rules"
)

const nativeHash = "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9"

// base returns a fresh valid config: two backends, two shards, two databases, two users.
func base() *rules.Config {
	return &rules.Config{
		Listen: "127.0.0.1:4000",
		Users: []rules.UserConfig{
			{Name: "zed", PasswordHash: nativeHash},
			{Name: "app", PasswordHash: nativeHash, Databases: []string{"shop"}},
		},
		Backends: []rules.BackendConfig{
			{Name: "b1", Addr: "10.0.0.1:3306", User: "proxy", Password: "pw"},
			{Name: "b2", Addr: "10.0.0.2:3306", User: "proxy", Password: "pw"},
		},
		Shards: []rules.ShardConfig{
			{Name: "s1", Primary: "b1", Replicas: []string{"b2"}, Database: "shop_0"},
			{Name: "s0", Primary: "b2", Database: "blog_0"},
		},
		Databases: []rules.DatabaseConfig{
			{Name: "shop", DefaultShard: "s1"},
			{Name: "blog", DefaultShard: "s0"},
		},
	}
}

func TestBuildInvalid(t *testing.T) {
	sec := rules.SecretsMap{"SHARDPROXY_TEST_PW": "from-env"}
	cases := []struct {
		name   string
		mutate func(c *rules.Config)
		frag   string
	}{
		{"bad listen", func(c *rules.Config) { c.Listen = "localhost" }, `listen "localhost"`},
		{"tls_cert without tls_key", func(c *rules.Config) { c.Server.TLSCert = "cert.pem" }, "tls_cert and tls_key go together"},
		{"tls_key without tls_cert", func(c *rules.Config) { c.Server.TLSKey = "key.pem" }, "tls_cert and tls_key go together"},
		{"no backends", func(c *rules.Config) { c.Backends = nil }, "no backends"},
		{"backend without name", func(c *rules.Config) { c.Backends[1].Name = "" }, "backends[1]: name is empty"},
		{"duplicate backend", func(c *rules.Config) { c.Backends[1].Name = "b1" }, `backend "b1": defined twice`},
		{"bad addr", func(c *rules.Config) { c.Backends[0].Addr = "10.0.0.1" }, `backend "b1": addr "10.0.0.1"`},
		{"empty addr", func(c *rules.Config) { c.Backends[0].Addr = "" }, `backend "b1": addr ""`},
		{"backend without user", func(c *rules.Config) { c.Backends[0].User = "" }, `backend "b1": user is empty`},
		{"password and password_env", func(c *rules.Config) { c.Backends[0].PasswordEnv = "SHARDPROXY_TEST_PW" },
			`backend "b1": password and password_env are exclusive`},
		{"password_env unset", func(c *rules.Config) {
			c.Backends[0].Password, c.Backends[0].PasswordEnv = "", "SHARDPROXY_TEST_UNSET_VARIABLE"
		}, `backend "b1": environment variable SHARDPROXY_TEST_UNSET_VARIABLE is not set`},
		{"negative max_open", func(c *rules.Config) { c.Backends[0].Pool.MaxOpen = -1 }, "pool sizes must not be negative"},
		{"negative max_idle", func(c *rules.Config) { c.Backends[0].Pool.MaxIdle = -1 }, "pool sizes must not be negative"},
		{"negative min_idle", func(c *rules.Config) { c.Backends[0].Pool.MinIdle = -1 }, "pool sizes must not be negative"},
		{"max_idle > max_open", func(c *rules.Config) { c.Backends[0].Pool = rules.PoolConfig{MaxOpen: 5, MaxIdle: 6} },
			`backend "b1": pool max_idle 6 exceeds max_open 5`},
		{"min_idle > max_open", func(c *rules.Config) { c.Backends[0].Pool = rules.PoolConfig{MaxOpen: 5, MinIdle: 6} },
			`backend "b1": pool min_idle 6 exceeds max_open 5`},
		{"no shards", func(c *rules.Config) { c.Shards = nil }, "no shards"},
		{"shard without name", func(c *rules.Config) { c.Shards[0].Name = "" }, "shards[0]: name is empty"},
		{"duplicate shard", func(c *rules.Config) { c.Shards[1].Name = "s1" }, `shard "s1": defined twice`},
		{"shard without database", func(c *rules.Config) { c.Shards[0].Database = "" }, `shard "s1": database is empty`},
		{"unknown primary", func(c *rules.Config) { c.Shards[0].Primary = "b9" }, `shard "s1": primary "b9" is not a backend`},
		{"no primary", func(c *rules.Config) { c.Shards[0].Primary = "" }, `shard "s1": primary "" is not a backend`},
		{"unknown replica", func(c *rules.Config) { c.Shards[0].Replicas = []string{"b9"} }, `shard "s1": replica "b9" is not a backend`},
		{"replica = primary", func(c *rules.Config) { c.Shards[0].Replicas = []string{"b1"} },
			`shard "s1": backend "b1" is both primary and replica`},
		{"no databases", func(c *rules.Config) { c.Databases = nil }, "no databases"},
		{"database without name", func(c *rules.Config) { c.Databases[1].Name = "" }, "databases[1]: name is empty"},
		{"reserved information_schema", func(c *rules.Config) { c.Databases[0].Name = "information_schema" },
			`database "information_schema": name is reserved`},
		{"reserved mysql", func(c *rules.Config) { c.Databases[0].Name = "mysql" }, `database "mysql": name is reserved`},
		{"reserved performance_schema", func(c *rules.Config) { c.Databases[0].Name = "performance_schema" },
			`database "performance_schema": name is reserved`},
		{"reserved sys", func(c *rules.Config) { c.Databases[0].Name = "sys" }, `database "sys": name is reserved`},
		{"duplicate database", func(c *rules.Config) { c.Databases[1].Name = "shop" }, `database "shop": defined twice`},
		{"unknown default_shard", func(c *rules.Config) { c.Databases[0].DefaultShard = "s9" },
			`database "shop": default_shard "s9" is not a shard`},
		{"no default_shard", func(c *rules.Config) { c.Databases[0].DefaultShard = "" },
			`database "shop": default_shard "" is not a shard`},
		{"no users", func(c *rules.Config) { c.Users = nil }, "no users"},
		{"user without name", func(c *rules.Config) { c.Users[1].Name = "" }, "users[1]: name is empty"},
		{"duplicate user", func(c *rules.Config) { c.Users[1].Name = "zed" }, `user "zed": defined twice`},
		{"empty password_hash", func(c *rules.Config) { c.Users[0].PasswordHash = "" },
			`user "zed": password_hash is not "*" and 40 hex digits`},
		{"bad server full_table_writes", func(c *rules.Config) { c.Server.FullTableWrites = "never" },
			`server.full_table_writes "never": want allow or forbid`},
		{"bad table full_table_writes", func(c *rules.Config) {
			c.Databases[0].Tables = append(c.Databases[0].Tables, rules.TableConfig{Name: "t9", FullTableWrites: "no"})
		}, `full_table_writes "no": want allow or forbid`},
		{"negative max_scatter_groups", func(c *rules.Config) { c.Server.MaxScatterGroups = -1 },
			"server: max_scatter_groups must not be negative"},
		{"negative server max_execution_time", func(c *rules.Config) { c.Server.MaxExecutionTime = -1 },
			"server: max_execution_time must not be negative"},
		{"negative user max_execution_time", func(c *rules.Config) { c.Users[1].MaxExecutionTime = rules.Duration(-time.Millisecond) },
			`user "app": max_execution_time must not be negative`},
		{"negative database max_execution_time", func(c *rules.Config) { c.Databases[1].MaxExecutionTime = rules.Duration(-time.Second) },
			`database "blog": max_execution_time must not be negative`},
		{"negative max_replica_lag", func(c *rules.Config) {
			c.Users[1].ReadWriteSplit, c.Users[1].MaxReplicaLag = true, rules.Duration(-time.Millisecond)
		}, `user "app": max_replica_lag must not be negative`},
		{"max_replica_lag without the split", func(c *rules.Config) { c.Databases[1].MaxReplicaLag = rules.Duration(time.Second) },
			`database "blog": max_replica_lag is set but read_write_split is not`},
		{"user with unknown database", func(c *rules.Config) { c.Users[1].Databases = []string{"shop", "nope"} },
			`user "app": database "nope" is not a logical database`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base()
			c.mutate(cfg)
			snap, err := rules.BuildWith(cfg, sec)
			if err == nil {
				t.Fatal("Build succeeded")
			}
			if snap != nil {
				t.Error("Build returned a snapshot with its error")
			}
			if !errors.Is(err, rules.ErrInvalid) {
				t.Errorf("err = %v, does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), c.frag) {
				t.Errorf("err = %q, want it to contain %q", err, c.frag)
			}
		})
	}
}

// TestBuildReservedNamesIgnoreCase: MySQL's system schema names are case-insensitive, and
// the router treats them so (isSystemSchema lowercases), so "MySQL" must be reserved too.
func TestBuildReservedNamesIgnoreCase(t *testing.T) {
	var accepted []string
	for _, name := range []string{"MySQL", "INFORMATION_SCHEMA", "Performance_Schema", "SYS"} {
		cfg := base()
		cfg.Databases[0].Name = name
		cfg.Users[1].Databases = nil
		if _, err := rules.Build(cfg); err == nil {
			accepted = append(accepted, name)
		}
	}
	if len(accepted) > 0 {
		t.Errorf("rules.Build accepts logical databases named %v: reserved names are case-insensitive "+
			"(the router's isSystemSchema lowercases)", accepted)
	}
}

// TestBuildPasswordHashFormat: UserConfig documents two hash formats; anything else can
// never authenticate, so a reload with a mistyped hash would lock the user out.
func TestBuildPasswordHashFormat(t *testing.T) {
	cfg := base()
	cfg.Users[0].PasswordHash = "secret" // plaintext, the mistake the check exists for
	if _, err := rules.Build(cfg); err == nil {
		t.Error("rules.Build accepts password_hash \"secret\"; UserConfig documents \"*\"+40 hex digits or " +
			"\"pbkdf2-sha256$...\" and the login rejects anything else")
	} else if !errors.Is(err, rules.ErrInvalid) {
		t.Errorf("err = %v, does not wrap ErrInvalid", err)
	}
}

func TestBuildSnapshot(t *testing.T) {
	t.Setenv("SHARDPROXY_TEST_PW", "not what Build must see")
	cfg := base()
	cfg.Listen = ""
	cfg.Backends[1].Password, cfg.Backends[1].PasswordEnv = "", "SHARDPROXY_TEST_PW"
	cfg.Backends[0].Pool = rules.PoolConfig{MaxOpen: 5, MaxIdle: 5, MinIdle: 5}
	cfg.Server.TLSCert, cfg.Server.TLSKey = "c.pem", "k.pem"
	cfg.Server.MaxExecutionTime = rules.Duration(2 * time.Second)
	cfg.Users[1].Admin, cfg.Users[1].MaxExecutionTime = true, rules.Duration(200*time.Millisecond)
	cfg.Databases[1].MaxExecutionTime = rules.Duration(time.Second)
	if _, err := rules.Build(cfg); err == nil || !strings.Contains(err.Error(), "SHARDPROXY_TEST_PW is not set") {
		t.Errorf("Build without secrets read password_env from somewhere: err = %v", err)
	}
	s, err := rules.BuildWith(cfg, rules.SecretsMap{"SHARDPROXY_TEST_PW": "from-env"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Listen() != "127.0.0.1:3307" {
		t.Errorf("default listen = %q", s.Listen())
	}
	if s.Server().TLSCert != "c.pem" || s.Server().MaxScatterGroups != rules.DefaultMaxScatterGroups {
		t.Errorf("Server() = %+v, want max_scatter_groups defaulted", s.Server())
	}
	var names []string
	for _, u := range s.Users() {
		names = append(names, u.Name)
	}
	if !slices.Equal(names, []string{"app", "zed"}) {
		t.Errorf("Users() = %v, want sorted [app zed]", names)
	}
	if got := s.DatabaseNames(); !slices.Equal(got, []string{"shop", "blog"}) {
		t.Errorf("DatabaseNames() = %v, want config order", got)
	}
	shards := s.Shards()
	if len(shards) != 2 || shards[0].Name != "s1" || shards[1].Name != "s0" {
		t.Fatalf("Shards() = %v, want config order", shards)
	}
	bs := s.Backends()
	if len(bs) != 2 || bs[0].Name != "b1" || bs[1].Password != "from-env" || bs[0].Password != "pw" {
		t.Errorf("Backends() = %+v", bs)
	}
	if bs[0].Pool.MinIdle != 5 {
		t.Errorf("pool = %+v", bs[0].Pool)
	}
	s1, ok := s.Shard("s1")
	if !ok || s1.Primary != bs[0] || len(s1.Replicas) != 1 || s1.Replicas[0] != bs[1] || s1.Database != "shop_0" {
		t.Errorf("Shard(s1) = %+v", s1)
	}
	if _, ok := s.Shard("nope"); ok {
		t.Error("Shard(nope) found")
	}
	shop, ok := s.Database("shop")
	if !ok || shop.DefaultShard != s1 || shop.Name != "shop" {
		t.Errorf("Database(shop) = %+v", shop)
	}
	if _, ok := s.Database("Shop"); ok {
		t.Error("Database names are exact")
	}
	app, _ := s.User("app")
	zed, _ := s.User("zed")
	blog, _ := s.Database("blog")
	if s.Server().MaxExecutionTime != rules.Duration(2*time.Second) || !app.Admin || zed.Admin ||
		app.MaxExecTime != 200*time.Millisecond || zed.MaxExecTime != 0 || blog.MaxExecTime != time.Second || shop.MaxExecTime != 0 {
		t.Errorf("deadline settings: server %v, app %+v, zed %+v, blog %v, shop %v",
			s.Server().MaxExecutionTime, app, zed, blog.MaxExecTime, shop.MaxExecTime)
	}
	if !app.CanUse("shop") || app.CanUse("blog") {
		t.Error("app: databases [shop] allows exactly shop")
	}
	if !zed.CanUse("shop") || !zed.CanUse("blog") {
		t.Error("zed: no databases allows every database")
	}
	if _, ok := s.User("nobody"); ok {
		t.Error("User(nobody) found")
	}
}

func TestBuildDoesNotAliasConfig(t *testing.T) {
	cfg := base()
	s, err := rules.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Users[1].Databases[0] = "blog"
	cfg.Databases[0].Name = "changed"
	cfg.Backends[0].Addr = "9.9.9.9:1"
	app, _ := s.User("app")
	if !app.CanUse("shop") || app.CanUse("blog") {
		t.Error("changing the config after Build changed the user's databases")
	}
	if _, ok := s.Database("shop"); !ok {
		t.Error("changing the config after Build changed the databases")
	}
	if s.Backends()[0].Addr != "10.0.0.1:3306" {
		t.Error("changing the config after Build changed a backend")
	}
}

func TestStore(t *testing.T) {
	s1, err := rules.Build(base())
	if err != nil {
		t.Fatal(err)
	}
	cfg := base()
	cfg.Listen = "127.0.0.1:5000"
	s2, err := rules.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := rules.NewStore(s1)
	if st.Load() != s1 {
		t.Fatal("Load after NewStore")
	}
	if prev := st.Swap(s2); prev != s1 {
		t.Error("Swap did not return the previous snapshot")
	}
	if st.Load() != s2 {
		t.Error("Load after Swap")
	}
	// A statement that loaded s1 before the swap keeps an intact s1.
	if s1.Listen() != "127.0.0.1:4000" {
		t.Error("the old snapshot changed")
	}
}

func TestStoreConcurrent(t *testing.T) {
	snaps := make([]*rules.Snapshot, 4)
	for i := range snaps {
		s, err := rules.Build(base())
		if err != nil {
			t.Fatal(err)
		}
		snaps[i] = s
	}
	st := rules.NewStore(snaps[0])
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				if r == 0 {
					st.Swap(snaps[i%len(snaps)])
					continue
				}
				s := st.Load()
				if !slices.Contains(snaps, s) {
					t.Error("Load returned a snapshot that was never stored")
					return
				}
				if _, ok := s.Database("shop"); !ok {
					t.Error("a loaded snapshot is incomplete")
					return
				}
			}
		})
	}
	wg.Wait()
}
