package rules_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/rules"
)

const fullYAML = `
listen: 0.0.0.0:3306
server:
  version: 8.0.36-shardproxy
  max_allowed_packet: 16MB
  handshake_timeout: 5s
  idle_timeout: 8h
  write_timeout: 1m30s
  max_connections: 100
  drain_timeout: 500ms
  max_execution_time: 2s
users:
  - name: app
    password_hash: "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9"
    databases: [shop]
    max_execution_time: 200ms
    admin: true
  - name: admin
    password_hash: pbkdf2-sha256$10000$c2FsdA$a2V5
backends:
  - name: db1
    addr: 10.0.0.1:3306
    user: proxy
    password: secret
    pool:
      max_open: 50
      max_idle: 10
      min_idle: 2
      max_lifetime: 30m
      idle_timeout: 5m
      acquire_timeout: 250ms
      dial_timeout: 3s
  - name: db2
    addr: "[::1]:3306"
    user: proxy
    password: secret
shards:
  - name: s0
    primary: db1
    replicas: [db2]
    database: shop_0
  - name: s1
    primary: db1
    database: blog_0
databases:
  - name: shop
    default_shard: s0
  - name: blog
    default_shard: s1
    max_execution_time: 1500ms
`

func TestParseFull(t *testing.T) {
	c, err := rules.Parse([]byte(fullYAML))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:3306" || c.Server.Version != "8.0.36-shardproxy" {
		t.Errorf("listen/version = %q, %q", c.Listen, c.Server.Version)
	}
	s := c.Server
	if s.MaxAllowedPacket != 16<<20 || time.Duration(s.HandshakeTimeout) != 5*time.Second ||
		time.Duration(s.IdleTimeout) != 8*time.Hour || time.Duration(s.WriteTimeout) != 90*time.Second ||
		s.MaxConnections != 100 || time.Duration(s.DrainTimeout) != 500*time.Millisecond {
		t.Errorf("server = %+v", s)
	}
	if s.MaxExecutionTime != rules.Duration(2*time.Second) || c.Users[0].MaxExecutionTime != rules.Duration(200*time.Millisecond) ||
		!c.Users[0].Admin || c.Users[1].Admin || c.Databases[1].MaxExecutionTime != rules.Duration(1500*time.Millisecond) {
		t.Errorf("deadline settings: server %v, users %+v, databases %+v", s.MaxExecutionTime, c.Users, c.Databases)
	}
	p := c.Backends[0].Pool
	want := rules.PoolConfig{
		MaxOpen: 50, MaxIdle: 10, MinIdle: 2,
		MaxLifetime: rules.Duration(30 * time.Minute), IdleTimeout: rules.Duration(5 * time.Minute),
		AcquireTimeout: rules.Duration(250 * time.Millisecond), DialTimeout: rules.Duration(3 * time.Second),
	}
	if p != want {
		t.Errorf("pool = %+v, want %+v", p, want)
	}
	if len(c.Users) != 2 || len(c.Users[0].Databases) != 1 || c.Shards[0].Replicas[0] != "db2" || c.Backends[1].Addr != "[::1]:3306" {
		t.Errorf("config = %+v", c)
	}
	if _, err := rules.Build(c); err != nil {
		t.Errorf("Build: %v", err)
	}
}

func TestParseStrict(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		frag string
	}{
		{"unknown top-level key", "listne: 1.2.3.4:5\n", "listne"},
		{"unknown nested key", "server:\n  max_conections: 5\n", "max_conections"},
		{"unknown key in a list item", "backends:\n  - name: a\n    adress: x:1\n", "adress"},
		{"unknown pool key", "backends:\n  - name: a\n    pool:\n      maxopen: 1\n", "maxopen"},
		{"duration without unit", "server:\n  idle_timeout: 30\n", "missing unit"},
		{"bad duration", "server:\n  write_timeout: soon\n", "soon"},
		{"duration as a map", "server:\n  write_timeout: {a: 1}\n", "cannot unmarshal"},
		{"bad byte size", "server:\n  max_allowed_packet: lots\n", "bad byte size"},
		{"negative byte size", "server:\n  max_allowed_packet: -1\n", "bad byte size"},
		{"wrong type", "server:\n  max_connections: many\n", "many"},
		{"not YAML", "{", "decode config"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := rules.Parse([]byte(c.yaml))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if !strings.Contains(err.Error(), c.frag) {
				t.Errorf("err = %v, want it to mention %q", err, c.frag)
			}
		})
	}
}

func TestParseDurationLine(t *testing.T) {
	_, err := rules.Parse([]byte("listen: x:1\nserver:\n  idle_timeout: 3 hours\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("err = %v, want it to name line 3", err)
	}
}

func parseSize(t *testing.T, v string) (int64, error) {
	t.Helper()
	c, err := rules.Parse([]byte("server:\n  max_allowed_packet: " + v + "\n"))
	if err != nil {
		return 0, err
	}
	return int64(c.Server.MaxAllowedPacket), nil
}

func TestByteSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
	}{
		{"1024", 1024},
		{"0", 0},
		{"100B", 100},
		{"64KB", 64 << 10},
		{"64K", 64 << 10},
		{"64MB", 64 << 20},
		{"16M", 16 << 20},
		{"1GB", 1 << 30},
		{"2G", 2 << 30},
		{"64mb", 64 << 20},
		{`"1 GB"`, 1 << 30},
		{`" 8kb "`, 8 << 10},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := parseSize(t, c.in)
			if err != nil || got != c.want {
				t.Errorf("%s = %d, %v; want %d", c.in, got, err, c.want)
			}
		})
	}
}

// TestByteSizeRejectsGarbage: a size that is not an integer and a known unit must be an
// error, never silently a different number.
func TestByteSizeRejectsGarbage(t *testing.T) {
	cases := []string{
		"64MiB",         // IEC unit: would read as 64 bytes ("MI" + "B")
		"1.5MB",         // fraction: would read as 1 MiB
		"10XB",          // unknown unit: would read as 10 bytes
		"12 apples",     // trailing words
		"99999999999GB", // overflows int64
	}
	var accepted []string
	for _, in := range cases {
		if v, err := parseSize(t, in); err == nil {
			accepted = append(accepted, in+" → "+strconv.FormatInt(v, 10))
		}
	}
	if len(accepted) > 0 {
		t.Errorf("ByteSize accepts malformed sizes: %s", strings.Join(accepted, "; "))
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(fullYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := rules.LoadFile(good)
	if err != nil || c.Listen != "0.0.0.0:3306" {
		t.Fatalf("LoadFile = %+v, %v", c, err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("nope: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := rules.LoadFile(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("LoadFile(bad) = %v, want an error naming the file", err)
	}
	_, err = rules.LoadFile(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadFile(missing) = %v, want ErrNotExist", err)
	}
}
