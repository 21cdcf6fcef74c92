package rules

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the YAML configuration as written by the operator. Durations are strings such
// as "500ms" or "30m". Load decodes it strictly (unknown keys are errors); Build validates it
// and turns it into a Snapshot.
type Config struct {
	Listen    string           `yaml:"listen"`
	Server    ServerConfig     `yaml:"server"`
	Users     []UserConfig     `yaml:"users"`
	Backends  []BackendConfig  `yaml:"backends"`
	Shards    []ShardConfig    `yaml:"shards"`
	Schemes   []SchemeConfig   `yaml:"schemes"`
	Databases []DatabaseConfig `yaml:"databases"`
	Admin     AdminConfig      `yaml:"admin"`
	Health    HealthConfig     `yaml:"health"`
}

// AdminConfig is the admin HTTP API (JSON, status page, /metrics). Off unless Listen is set.
type AdminConfig struct {
	// Listen is the admin address, e.g. 127.0.0.1:9090. A non-loopback address requires
	// TLSCert and TLSKey. Changing it takes a restart.
	Listen  string `yaml:"listen"`
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// Tokens are the bearer tokens accepted, stored as hashes.
	Tokens []AdminToken `yaml:"tokens"`
	// Open lists endpoints served without a token: any of metrics, healthz, readyz, status
	// (the HTML page at /).
	Open []string `yaml:"open"`
}

// Admin roles.
const (
	RoleRead  = "read"  // every GET
	RoleAdmin = "admin" // GET and POST (reload, drain, kill)
)

// AdminToken is one bearer token of the admin API.
type AdminToken struct {
	Name string `yaml:"name"` // for logs; never the token
	Role string `yaml:"role"` // read or admin
	// SHA256 is the hex SHA-256 of the token (`shardproxy hash-token` prints it).
	SHA256 string `yaml:"sha256"`
}

// ServerConfig tunes the client-facing side.
type ServerConfig struct {
	Version          string   `yaml:"version"`            // announced server version
	MaxAllowedPacket ByteSize `yaml:"max_allowed_packet"` // default 64MiB
	HandshakeTimeout Duration `yaml:"handshake_timeout"`  // default 10s
	IdleTimeout      Duration `yaml:"idle_timeout"`       // default 8h (wait_timeout)
	WriteTimeout     Duration `yaml:"write_timeout"`      // default 60s
	MaxConnections   int      `yaml:"max_connections"`    // default 4096
	DrainTimeout     Duration `yaml:"drain_timeout"`      // default 30s, graceful shutdown
	TLSCert          string   `yaml:"tls_cert"`           // PEM file; with tls_key enables TLS
	TLSKey           string   `yaml:"tls_key"`
	// MaxExecutionTime is the proxy-wide default deadline of a statement; zero means none.
	// Users and databases may set their own; a session's max_execution_time and the
	// MAX_EXECUTION_TIME hint take precedence.
	MaxExecutionTime Duration `yaml:"max_execution_time"`
	// FullTableWrites (allow or forbid, default allow) is the default of every table's
	// full_table_writes: whether UPDATE/DELETE without WHERE may run on every shard.
	FullTableWrites string `yaml:"full_table_writes"`
	// MaxScatterGroups bounds the rows a scatter query's merge may hold at once: the groups
	// of a GROUP BY sorted by an aggregate (ORDER BY over the merged groups; with LIMIT n
	// only the best n are held). A query that needs more fails with 1038. Default
	// DefaultMaxScatterGroups; it applies from the next statement after a reload.
	MaxScatterGroups int `yaml:"max_scatter_groups"`
	// MaxSubqueryValues bounds the rows an uncorrelated IN (SELECT ...) over several shards,
	// or the SELECT of an INSERT ... SELECT over sharded tables, may return: the proxy runs
	// it first and binds its values into the outer statement (a list, the rows to insert).
	// One that returns more fails with 1104. Default DefaultMaxSubqueryValues.
	MaxSubqueryValues int `yaml:"max_subquery_values"`
}

// DefaultMaxSubqueryValues is server.max_subquery_values when the configuration leaves it out.
const DefaultMaxSubqueryValues = 10_000

// DefaultMaxScatterGroups is server.max_scatter_groups when the configuration leaves it out.
const DefaultMaxScatterGroups = 100_000

// UserConfig is a client account of the proxy.
type UserConfig struct {
	Name string `yaml:"name"`
	// PasswordHash is "*" + 40 hex digits (mysql_native_password, as MySQL stores it) or
	// "pbkdf2-sha256$..." (caching_sha2_password); `shardproxy hash-password` makes both.
	PasswordHash string `yaml:"password_hash"`
	// Databases lists the logical databases the user may use; empty means all.
	Databases []string `yaml:"databases"`
	// Admin lets the user see every session in SHOW PROCESSLIST and KILL any of them (MySQL's
	// PROCESS and CONNECTION_ADMIN); others see and kill only their own.
	Admin bool `yaml:"admin"`
	// MaxExecutionTime is the user's default statement deadline; zero means none (the
	// database's or the server's default applies).
	MaxExecutionTime Duration `yaml:"max_execution_time"`
	// ReadWriteSplit sends the user's reads outside transactions to a replica (see
	// ReadSplit); MaxReplicaLag bounds the lag of that replica (default 1s).
	ReadWriteSplit bool     `yaml:"read_write_split"`
	MaxReplicaLag  Duration `yaml:"max_replica_lag"`
}

// BackendConfig is one MySQL/MariaDB server and its connection pool.
type BackendConfig struct {
	Name        string     `yaml:"name"`
	Addr        string     `yaml:"addr"` // host:port
	User        string     `yaml:"user"`
	Password    string     `yaml:"password"`     // or PasswordEnv
	PasswordEnv string     `yaml:"password_env"` // environment variable holding the password
	Pool        PoolConfig `yaml:"pool"`
	// ReplicationAddr is host:port at which the other servers of its shards reach this one
	// (CHANGE MASTER TO after a promotion); default addr.
	ReplicationAddr string `yaml:"replication_addr"`
}

// PoolConfig bounds a backend's connection pool; zero values take the pool's defaults.
type PoolConfig struct {
	MaxOpen        int      `yaml:"max_open"`        // default 100
	MaxIdle        int      `yaml:"max_idle"`        // default max_open
	MinIdle        int      `yaml:"min_idle"`        // default 0
	MaxLifetime    Duration `yaml:"max_lifetime"`    // default 30m, jittered
	IdleTimeout    Duration `yaml:"idle_timeout"`    // default 5m
	AcquireTimeout Duration `yaml:"acquire_timeout"` // default 5s
	DialTimeout    Duration `yaml:"dial_timeout"`    // default 3s
}

// ShardConfig is a replication group and the physical database on it that holds rows.
type ShardConfig struct {
	Name     string   `yaml:"name"`
	Primary  string   `yaml:"primary"`  // backend name
	Replicas []string `yaml:"replicas"` // backend names
	Database string   `yaml:"database"` // physical database name
	// Failover says what the proxy does when the primary is lost (see FailoverConfig).
	Failover FailoverConfig `yaml:"failover"`
}

// DatabaseConfig is a logical database as clients see it.
type DatabaseConfig struct {
	Name         string        `yaml:"name"`
	DefaultShard string        `yaml:"default_shard"` // holds single tables and everything unsharded
	Tables       []TableConfig `yaml:"tables"`        // tables not listed are single tables
	// MaxExecutionTime is the default statement deadline in this database (the session's
	// current one); zero means none (the server's default applies).
	MaxExecutionTime Duration `yaml:"max_execution_time"`
	// ReadWriteSplit sends reads outside transactions in this database to a replica (see
	// ReadSplit); MaxReplicaLag bounds the lag of that replica (default 1s).
	ReadWriteSplit bool     `yaml:"read_write_split"`
	MaxReplicaLag  Duration `yaml:"max_replica_lag"`
}

// Table kinds.
const (
	KindSharded   = "sharded"   // rows spread over shards by a scheme on a key column
	KindBroadcast = "broadcast" // a full copy on every shard of the database
	KindSingle    = "single"    // lives on the database's default shard
)

// TableConfig places one logical table.
type TableConfig struct {
	Name   string `yaml:"name"`
	Kind   string `yaml:"kind"`   // sharded, broadcast or single (default single)
	Key    string `yaml:"key"`    // sharded: the shard key column
	Scheme string `yaml:"scheme"` // sharded: the scheme placing its rows
	// TablePerSlot gives every slot its own physical table, NAME_SSSS (slot number, four
	// digits): orders → orders_0007. Without it the physical table keeps the logical name and
	// each shard's database holds that shard's rows.
	TablePerSlot bool `yaml:"table_per_slot"`
	// FullTableWrites (allow or forbid; default the server's) says whether UPDATE and DELETE
	// without WHERE may change every row of a sharded or broadcast table on every shard.
	FullTableWrites string `yaml:"full_table_writes"`
}

// SchemeConfig is a sharding scheme: a function from a key value to a slot, and where each
// slot lives. Tables sharded by the same scheme on the join key are co-located.
type SchemeConfig struct {
	Name     string `yaml:"name"`
	Function string `yaml:"function"` // hash, mod, range or date
	// Slots (hash, mod) is the number of slots; default len(shards).
	Slots int `yaml:"slots"`
	// Shards (hash, mod) hold the slots in contiguous blocks: slot s lives on
	// shards[s*len(shards)/slots].
	Shards []string `yaml:"shards"`
	// Ranges (range, date) are one slot each, in order, disjoint.
	Ranges []RangeConfig `yaml:"ranges"`
	// Unit (date) truncates keys to day, month or year before the range lookup.
	Unit string `yaml:"unit"`
	// Collation (hash) is the collation of the key columns when they hold text:
	// utf8mb4_general_ci (default), utf8mb4_unicode_ci or utf8mb4_bin. Text keys hash by
	// their weights under it, so keys MariaDB holds equal land on the same slot. Changing it
	// moves text keys.
	Collation string `yaml:"collation"`
}

// RangeConfig is one range of a range or date scheme: [from, to). An empty from (first
// range only) or to (last range only) is unbounded. Integers for range; dates
// ('2024-01-01') for date.
type RangeConfig struct {
	From  string `yaml:"from"`
	To    string `yaml:"to"`
	Shard string `yaml:"shard"`
}

// Duration is a time.Duration written as "500ms" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a size written as 1024, "64KB", "16MB" or "1GB" (powers of 1024).
type ByteSize int64

// UnmarshalYAML parses a byte size.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := parseByteSize(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = ByteSize(v)
	return nil
}

func parseByteSize(in string) (int64, error) {
	s := strings.ToUpper(strings.TrimSpace(in))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.m
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > math.MaxInt64/mult {
		return 0, fmt.Errorf("bad byte size %q: want a whole number with an optional unit B, KB, MB or GB", in)
	}
	return v * mult, nil
}

// Parse decodes YAML strictly: unknown keys are errors, so typos do not pass silently.
func Parse(data []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("rules: decode config: %w", err)
	}
	return &c, nil
}

// LoadFile reads and decodes a YAML config file.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ErrInvalid wraps every validation failure.
var ErrInvalid = errors.New("rules: invalid config")
