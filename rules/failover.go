package rules

import (
	"fmt"
	"os"
	"time"
)

// Failover modes of a shard.
const (
	// FailoverNone: the proxy never changes the shard's primary (default).
	FailoverNone = "none"
	// FailoverPromote: the proxy confirms a lost primary and promotes the replica that
	// received the most, then fences the old primary.
	FailoverPromote = "promote"
	// FailoverFollow: another tool promotes; the proxy follows the backend of the shard
	// that reports read_only=0 and fences the one it left.
	FailoverFollow = "follow"
)

// FailoverConfig is what the proxy does when a shard's primary is lost.
type FailoverConfig struct {
	// Mode is none (default), promote or follow.
	Mode string `yaml:"mode"`
	// ReplicationUser and ReplicationPassword (or ReplicationPasswordEnv) are the account
	// replicas use to replicate from a promoted primary (CHANGE MASTER TO); default the
	// backend's own user and password.
	ReplicationUser        string `yaml:"replication_user"`
	ReplicationPassword    string `yaml:"replication_password"`
	ReplicationPasswordEnv string `yaml:"replication_password_env"`
	// BufferTimeout bounds how long a statement waits for a writable primary while the
	// shard has none (a statement's own deadline may end the wait earlier); default 5s.
	BufferTimeout Duration `yaml:"buffer_timeout"`
	// BufferMax bounds the statements waiting at once; more get an error; default 1000.
	BufferMax int `yaml:"buffer_max"`
	// SemiSyncDeclared (promote mode) is the operator's word that the shard runs the
	// settings "no acknowledged write lost" depends on (README: semi-sync AFTER_SYNC on the
	// primary with wait_no_slave ON and a timeout that never elapses, and the configured
	// replicas are all the primary's semi-sync replicas). The proxy checks those settings on
	// a primary it probes; it needs the declaration only for a primary it never reached (it
	// started after the primary died): then the replicas' own view stands in for the
	// primary's (topo's coldstart rule), and without it the proxy refuses to promote.
	SemiSyncDeclared bool `yaml:"semi_sync_declared"`
}

// Failover is a shard's validated failover settings.
type Failover struct {
	Mode                   string
	ReplUser, ReplPassword string // "" user: the backend's own credentials
	BufferTimeout          time.Duration
	BufferMax              int
	SemiSyncDeclared       bool
}

// Defaults of Failover.
const (
	DefaultBufferTimeout = 5 * time.Second
	DefaultBufferMax     = 1000
)

func buildFailover(sc ShardConfig) (Failover, error) {
	fc := sc.Failover
	f := Failover{Mode: fc.Mode, ReplUser: fc.ReplicationUser, ReplPassword: fc.ReplicationPassword,
		BufferTimeout: time.Duration(fc.BufferTimeout), BufferMax: fc.BufferMax, SemiSyncDeclared: fc.SemiSyncDeclared}
	switch f.Mode {
	case "":
		f.Mode = FailoverNone
	case FailoverNone, FailoverPromote, FailoverFollow:
	default:
		return f, fmt.Errorf("%w: shard %q: failover.mode %q: want none, promote or follow", ErrInvalid, sc.Name, f.Mode)
	}
	if f.SemiSyncDeclared && f.Mode != FailoverPromote {
		return f, fmt.Errorf("%w: shard %q: failover.semi_sync_declared applies to mode promote only", ErrInvalid, sc.Name)
	}
	if f.Mode != FailoverNone && len(sc.Replicas) == 0 {
		return f, fmt.Errorf("%w: shard %q: failover.mode %s needs replicas", ErrInvalid, sc.Name, f.Mode)
	}
	if fc.ReplicationPasswordEnv != "" {
		if f.ReplPassword != "" {
			return f, fmt.Errorf("%w: shard %q: failover: replication_password and replication_password_env are exclusive", ErrInvalid, sc.Name)
		}
		v, ok := os.LookupEnv(fc.ReplicationPasswordEnv)
		if !ok {
			return f, fmt.Errorf("%w: shard %q: environment variable %s is not set", ErrInvalid, sc.Name, fc.ReplicationPasswordEnv)
		}
		f.ReplPassword = v
	}
	switch {
	case f.BufferTimeout < 0 || f.BufferMax < 0:
		return f, fmt.Errorf("%w: shard %q: failover buffer_timeout and buffer_max must not be negative", ErrInvalid, sc.Name)
	case f.BufferTimeout == 0:
		f.BufferTimeout = DefaultBufferTimeout
	}
	if f.BufferMax == 0 {
		f.BufferMax = DefaultBufferMax
	}
	return f, nil
}

// HealthConfig tunes the backend health checks; zero values take the defaults.
type HealthConfig struct {
	Interval  Duration `yaml:"interval"`   // between probes of a backend that is up; default 200ms
	Timeout   Duration `yaml:"timeout"`    // bounds one probe, dial included; default 300ms
	DownAfter int      `yaml:"down_after"` // failed probes in a row that make a backend down; default 3
}

// Health is the validated health-check settings (zero fields: the health package's defaults).
type Health struct {
	Interval, Timeout time.Duration
	DownAfter         int
}

func buildHealth(h HealthConfig) (Health, error) {
	if h.Interval < 0 || h.Timeout < 0 || h.DownAfter < 0 {
		return Health{}, fmt.Errorf("%w: health: interval, timeout and down_after must not be negative", ErrInvalid)
	}
	return Health{Interval: time.Duration(h.Interval), Timeout: time.Duration(h.Timeout), DownAfter: h.DownAfter}, nil
}

// Health returns the health-check settings.
func (s *Snapshot) Health() Health { return s.health }
