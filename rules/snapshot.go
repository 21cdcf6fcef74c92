package rules

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Snapshot is a validated, immutable view of the configuration. It is shared by every
// goroutine without locks; a reload builds a new one and swaps it in a Store.
type Snapshot struct {
	listen    string
	server    ServerConfig
	users     map[string]*User
	backends  map[string]*Backend
	backendNs []string
	shards    map[string]*Shard
	shardNs   []string
	schemes   map[string]*Scheme
	databases map[string]*Database
	dbNames   []string
	admin     AdminConfig
	health    Health
}

// User is a proxy account.
type User struct {
	Name         string
	PasswordHash string
	Admin        bool            // sees and kills every session
	MaxExecTime  time.Duration   // default statement deadline; 0: none
	Split        ReadSplit       // read/write split of the user's sessions (readsplit.go)
	databases    map[string]bool // nil: every database
}

// CanUse reports whether the user may use logical database db.
func (u *User) CanUse(db string) bool { return u.databases == nil || u.databases[db] }

// Backend is one MySQL/MariaDB server. It is comparable: equal values mean equal settings.
type Backend struct {
	Name, Addr, User, Password string
	Pool                       PoolConfig
	ReplicationAddr            string // host:port the shard's other servers reach it at
}

// Shard is a replication group and the physical database that holds its rows.
type Shard struct {
	Name     string
	Primary  *Backend
	Replicas []*Backend
	Database string
	Failover Failover
}

// Database is a logical database.
type Database struct {
	Name         string
	DefaultShard *Shard
	MaxExecTime  time.Duration // default statement deadline; 0: none
	Split        ReadSplit     // read/write split in this database (readsplit.go)
	tables       map[string]*Table
	tableNames   []string
	shards       []*Shard
}

// Listen returns the client listen address.
func (s *Snapshot) Listen() string { return s.listen }

// Admin returns the admin API settings (tokens as hashes).
func (s *Snapshot) Admin() AdminConfig { return s.admin }

// Server returns the client-side settings.
func (s *Snapshot) Server() ServerConfig { return s.server }

// User returns the account named name.
func (s *Snapshot) User(name string) (*User, bool) { u, ok := s.users[name]; return u, ok }

// Users returns every account, sorted by name.
func (s *Snapshot) Users() []*User {
	out := make([]*User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b *User) int { return cmpString(a.Name, b.Name) })
	return out
}

// Database returns the logical database named name.
func (s *Snapshot) Database(name string) (*Database, bool) {
	d, ok := s.databases[name]
	return d, ok
}

// DatabaseNames returns the logical databases in config order.
func (s *Snapshot) DatabaseNames() []string { return s.dbNames }

// Shard returns the shard named name.
func (s *Snapshot) Shard(name string) (*Shard, bool) { sh, ok := s.shards[name]; return sh, ok }

// Shards returns every shard in config order.
func (s *Snapshot) Shards() []*Shard {
	out := make([]*Shard, len(s.shardNs))
	for i, n := range s.shardNs {
		out[i] = s.shards[n]
	}
	return out
}

// Backends returns every backend in config order.
func (s *Snapshot) Backends() []*Backend {
	out := make([]*Backend, len(s.backendNs))
	for i, n := range s.backendNs {
		out[i] = s.backends[n]
	}
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Build validates c and returns its snapshot, resolving no secrets: a backend with
// password_env is invalid. It is BuildWith(c, nil).
func Build(c *Config) (*Snapshot, error) { return BuildWith(c, nil) }

// BuildWith validates c and returns its snapshot; backend passwords named by password_env
// are resolved through sec (nil resolves none). Building is pure: it reads no environment,
// file or network. Every error wraps ErrInvalid and names the offending entry.
func BuildWith(c *Config, sec Secrets) (*Snapshot, error) {
	s := &Snapshot{
		listen: c.Listen, server: c.Server,
		users: map[string]*User{}, backends: map[string]*Backend{},
		shards: map[string]*Shard{}, databases: map[string]*Database{},
	}
	if s.listen == "" {
		s.listen = "127.0.0.1:3307"
	}
	if _, _, err := net.SplitHostPort(s.listen); err != nil {
		return nil, fmt.Errorf("%w: listen %q: %v", ErrInvalid, s.listen, err)
	}
	if c.Server.MaxExecutionTime < 0 {
		return nil, fmt.Errorf("%w: server: max_execution_time must not be negative", ErrInvalid)
	}
	switch c.Server.FullTableWrites {
	case "", "allow", "forbid":
	default:
		return nil, fmt.Errorf("%w: server.full_table_writes %q: want allow or forbid", ErrInvalid, c.Server.FullTableWrites)
	}
	switch {
	case c.Server.MaxScatterGroups < 0:
		return nil, fmt.Errorf("%w: server: max_scatter_groups must not be negative", ErrInvalid)
	case c.Server.MaxScatterGroups == 0:
		s.server.MaxScatterGroups = DefaultMaxScatterGroups
	}
	switch {
	case c.Server.MaxSubqueryValues < 0:
		return nil, fmt.Errorf("%w: server: max_subquery_values must not be negative", ErrInvalid)
	case c.Server.MaxSubqueryValues == 0:
		s.server.MaxSubqueryValues = DefaultMaxSubqueryValues
	}
	if (c.Server.TLSCert == "") != (c.Server.TLSKey == "") {
		return nil, fmt.Errorf("%w: server: tls_cert and tls_key go together", ErrInvalid)
	}
	if err := validateAdmin(c.Admin); err != nil {
		return nil, err
	}
	s.admin = c.Admin
	if err := s.addBackends(c.Backends, sec); err != nil {
		return nil, err
	}
	if err := s.addShards(c.Shards); err != nil {
		return nil, err
	}
	if err := s.addSchemes(c.Schemes); err != nil {
		return nil, err
	}
	if err := s.addDatabases(c.Databases); err != nil {
		return nil, err
	}
	if err := s.addTables(c.Databases); err != nil {
		return nil, err
	}
	if err := s.addUsers(c.Users); err != nil {
		return nil, err
	}
	h, err := buildHealth(c.Health)
	if err != nil {
		return nil, err
	}
	s.health = h
	return s, nil
}

func (s *Snapshot) addBackends(bs []BackendConfig, sec Secrets) error {
	if len(bs) == 0 {
		return fmt.Errorf("%w: no backends", ErrInvalid)
	}
	for i, b := range bs {
		if b.Name == "" {
			return fmt.Errorf("%w: backends[%d]: name is empty", ErrInvalid, i)
		}
		if _, dup := s.backends[b.Name]; dup {
			return fmt.Errorf("%w: backend %q: defined twice", ErrInvalid, b.Name)
		}
		if _, _, err := net.SplitHostPort(b.Addr); err != nil {
			return fmt.Errorf("%w: backend %q: addr %q: %v", ErrInvalid, b.Name, b.Addr, err)
		}
		if b.User == "" {
			return fmt.Errorf("%w: backend %q: user is empty", ErrInvalid, b.Name)
		}
		pw := b.Password
		if b.PasswordEnv != "" {
			if pw != "" {
				return fmt.Errorf("%w: backend %q: password and password_env are exclusive", ErrInvalid, b.Name)
			}
			var v string
			ok := false
			if sec != nil {
				v, ok = sec.Secret(b.PasswordEnv)
			}
			if !ok {
				return fmt.Errorf("%w: backend %q: environment variable %s is not set", ErrInvalid, b.Name, b.PasswordEnv)
			}
			pw = v
		}
		p := b.Pool
		switch {
		case p.MaxOpen < 0 || p.MaxIdle < 0 || p.MinIdle < 0:
			return fmt.Errorf("%w: backend %q: pool sizes must not be negative", ErrInvalid, b.Name)
		case p.MaxOpen > 0 && p.MaxIdle > p.MaxOpen:
			return fmt.Errorf("%w: backend %q: pool max_idle %d exceeds max_open %d", ErrInvalid, b.Name, p.MaxIdle, p.MaxOpen)
		case p.MaxOpen > 0 && p.MinIdle > p.MaxOpen:
			return fmt.Errorf("%w: backend %q: pool min_idle %d exceeds max_open %d", ErrInvalid, b.Name, p.MinIdle, p.MaxOpen)
		}
		ra := b.ReplicationAddr
		if ra == "" {
			ra = b.Addr
		} else if _, _, err := net.SplitHostPort(ra); err != nil {
			return fmt.Errorf("%w: backend %q: replication_addr %q: %v", ErrInvalid, b.Name, ra, err)
		}
		s.backends[b.Name] = &Backend{Name: b.Name, Addr: b.Addr, User: b.User, Password: pw, Pool: p, ReplicationAddr: ra}
		s.backendNs = append(s.backendNs, b.Name)
	}
	return nil
}

func (s *Snapshot) addShards(shs []ShardConfig) error {
	if len(shs) == 0 {
		return fmt.Errorf("%w: no shards", ErrInvalid)
	}
	for i, sc := range shs {
		if sc.Name == "" {
			return fmt.Errorf("%w: shards[%d]: name is empty", ErrInvalid, i)
		}
		if _, dup := s.shards[sc.Name]; dup {
			return fmt.Errorf("%w: shard %q: defined twice", ErrInvalid, sc.Name)
		}
		if sc.Database == "" {
			return fmt.Errorf("%w: shard %q: database is empty", ErrInvalid, sc.Name)
		}
		prim, ok := s.backends[sc.Primary]
		if !ok {
			return fmt.Errorf("%w: shard %q: primary %q is not a backend", ErrInvalid, sc.Name, sc.Primary)
		}
		fo, err := buildFailover(sc)
		if err != nil {
			return err
		}
		sh := &Shard{Name: sc.Name, Primary: prim, Database: sc.Database, Failover: fo}
		for _, r := range sc.Replicas {
			b, ok := s.backends[r]
			if !ok {
				return fmt.Errorf("%w: shard %q: replica %q is not a backend", ErrInvalid, sc.Name, r)
			}
			if b == prim {
				return fmt.Errorf("%w: shard %q: backend %q is both primary and replica", ErrInvalid, sc.Name, r)
			}
			sh.Replicas = append(sh.Replicas, b)
		}
		s.shards[sc.Name] = sh
		s.shardNs = append(s.shardNs, sc.Name)
	}
	return nil
}

func (s *Snapshot) addDatabases(dbs []DatabaseConfig) error {
	if len(dbs) == 0 {
		return fmt.Errorf("%w: no databases", ErrInvalid)
	}
	for i, d := range dbs {
		switch strings.ToLower(d.Name) {
		case "":
			return fmt.Errorf("%w: databases[%d]: name is empty", ErrInvalid, i)
		case "information_schema", "mysql", "performance_schema", "sys":
			return fmt.Errorf("%w: database %q: name is reserved", ErrInvalid, d.Name)
		}
		if _, dup := s.databases[d.Name]; dup {
			return fmt.Errorf("%w: database %q: defined twice", ErrInvalid, d.Name)
		}
		sh, ok := s.shards[d.DefaultShard]
		if !ok {
			return fmt.Errorf("%w: database %q: default_shard %q is not a shard", ErrInvalid, d.Name, d.DefaultShard)
		}
		if d.MaxExecutionTime < 0 {
			return fmt.Errorf("%w: database %q: max_execution_time must not be negative", ErrInvalid, d.Name)
		}
		split, err := newReadSplit(d.ReadWriteSplit, d.MaxReplicaLag)
		if err != nil {
			return fmt.Errorf("%w: database %q: %w", ErrInvalid, d.Name, err)
		}
		s.databases[d.Name] = &Database{Name: d.Name, DefaultShard: sh, shards: []*Shard{sh}, MaxExecTime: time.Duration(d.MaxExecutionTime), Split: split}
		s.dbNames = append(s.dbNames, d.Name)
	}
	return nil
}

func (s *Snapshot) addUsers(us []UserConfig) error {
	if len(us) == 0 {
		return fmt.Errorf("%w: no users", ErrInvalid)
	}
	for i, u := range us {
		if u.Name == "" {
			return fmt.Errorf("%w: users[%d]: name is empty", ErrInvalid, i)
		}
		if _, dup := s.users[u.Name]; dup {
			return fmt.Errorf("%w: user %q: defined twice", ErrInvalid, u.Name)
		}
		if !hashShape(u.PasswordHash) {
			return fmt.Errorf("%w: user %q: password_hash is not \"*\" and 40 hex digits nor \"pbkdf2-sha256$...\" (plaintext passwords are not accepted; see shardproxy hash-password)", ErrInvalid, u.Name)
		}
		if u.MaxExecutionTime < 0 {
			return fmt.Errorf("%w: user %q: max_execution_time must not be negative", ErrInvalid, u.Name)
		}
		split, err := newReadSplit(u.ReadWriteSplit, u.MaxReplicaLag)
		if err != nil {
			return fmt.Errorf("%w: user %q: %w", ErrInvalid, u.Name, err)
		}
		user := &User{Name: u.Name, PasswordHash: u.PasswordHash, Admin: u.Admin, MaxExecTime: time.Duration(u.MaxExecutionTime), Split: split}
		if len(u.Databases) > 0 {
			user.databases = map[string]bool{}
			for _, db := range u.Databases {
				if _, ok := s.databases[db]; !ok {
					return fmt.Errorf("%w: user %q: database %q is not a logical database", ErrInvalid, u.Name, db)
				}
				user.databases[db] = true
			}
		}
		s.users[u.Name] = user
	}
	return nil
}

// hashShape checks the outline of the two password_hash formats UserConfig documents; the
// protocol package parses them fully at login.
func hashShape(h string) bool {
	if strings.HasPrefix(h, "pbkdf2-sha256$") {
		return strings.Count(h, "$") == 3
	}
	if len(h) != 41 || h[0] != '*' {
		return false
	}
	for _, r := range h[1:] {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// Store holds the current snapshot. Load is wait-free; Swap publishes a new one. In-flight
// statements keep the snapshot they loaded.
type Store struct {
	p atomic.Pointer[Snapshot]
}

// NewStore returns a store holding s.
func NewStore(s *Snapshot) *Store {
	st := &Store{}
	st.p.Store(s)
	return st
}

// Load returns the current snapshot.
func (st *Store) Load() *Snapshot { return st.p.Load() }

// Swap publishes s and returns the previous snapshot.
func (st *Store) Swap(s *Snapshot) *Snapshot { return st.p.Swap(s) }
