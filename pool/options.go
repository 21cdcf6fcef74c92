package pool

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pingcap/tidb/pkg/parser/charset"
)

// Defaults applied by New to zero-valued Options fields.
const (
	DefaultCollation      = "utf8mb4_general_ci"
	DefaultMaxOpen        = 100
	DefaultMaxLifetime    = 30 * time.Minute
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultAcquireTimeout = 5 * time.Second
	DefaultDialTimeout    = 3 * time.Second
	DefaultPingAfterIdle  = time.Second
)

// lifetimeJitter is the largest fraction by which a connection's MaxLifetime is shortened, so
// that connections dialled together do not all expire together.
const lifetimeJitter = 0.10

// ErrInvalidOptions is wrapped by the errors of Options.Validate.
var ErrInvalidOptions = errors.New("pool: invalid options")

// Options configures a Pool. The zero value of each field selects the default documented on
// it; Addr and User are required. Options are copied by New and never modified afterwards.
type Options struct {
	// Addr is the backend's host:port.
	Addr string
	// User and Password are the backend credentials.
	User, Password string
	// Collation is sent in the handshake; default "utf8mb4_general_ci". It must be a
	// collation go-mysql knows (those of MySQL 8 and MariaDB share names and ids).
	Collation string
	// MaxOpen bounds the connections open at once: idle, in use and being dialled.
	// Default 100.
	MaxOpen int
	// MaxIdle bounds the idle connections kept; a connection released above it is closed.
	// Default MaxOpen.
	MaxIdle int
	// MinIdle connections are kept warm by the maintenance goroutine. Default 0.
	MinIdle int
	// MaxLifetime bounds how long a connection is used; each connection's limit is shortened
	// by a random 0-10% so connections do not recycle together. 0 selects 30m; a negative
	// value means unlimited.
	MaxLifetime time.Duration
	// IdleTimeout closes connections idle longer than this, down to MinIdle. Default 5m.
	IdleTimeout time.Duration
	// AcquireTimeout bounds how long Acquire waits for a free connection, in addition to its
	// context. Default 5s.
	AcquireTimeout time.Duration
	// DialTimeout bounds a dial including the handshake. It also bounds the COM_PING check
	// of Acquire and the COM_RESET_CONNECTION of Release. Default 3s.
	DialTimeout time.Duration
	// PingAfterIdle: a connection idle longer than this is checked with COM_PING before
	// Acquire hands it out; one that fails is discarded. Default 1s.
	PingAfterIdle time.Duration
	// KillReserve keeps one connection to the backend, outside MaxOpen, in reserve for
	// KillQuery (dialed after the first successful dial, pinged, re-dialed when it breaks),
	// so that a deadline's KILL QUERY neither waits for a login nor fails when the backend
	// is at max_connections. Off by default.
	KillReserve bool
	// TLS, when set, is used to encrypt backend connections.
	TLS *tls.Config
	// Logger receives the pool's logs; nil discards them.
	Logger *slog.Logger
}

// withDefaults returns o with zero fields replaced by their defaults.
func (o Options) withDefaults() Options {
	if o.Collation == "" {
		o.Collation = DefaultCollation
	}
	if o.MaxOpen == 0 {
		o.MaxOpen = DefaultMaxOpen
	}
	if o.MaxIdle == 0 {
		o.MaxIdle = o.MaxOpen
	}
	if o.MaxLifetime == 0 {
		o.MaxLifetime = DefaultMaxLifetime
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.AcquireTimeout == 0 {
		o.AcquireTimeout = DefaultAcquireTimeout
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.PingAfterIdle == 0 {
		o.PingAfterIdle = DefaultPingAfterIdle
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports every problem with o (after defaults are applied to zero fields), each
// wrapping ErrInvalidOptions. It returns nil when New would accept o.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...))
	}
	if o.Addr == "" {
		bad("Addr is empty")
	}
	if o.User == "" {
		bad("User is empty")
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"MaxOpen", o.MaxOpen}, {"MaxIdle", o.MaxIdle}, {"MinIdle", o.MinIdle}} {
		if f.v < 0 {
			bad("%s is negative (%d)", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"IdleTimeout", o.IdleTimeout}, {"AcquireTimeout", o.AcquireTimeout},
		{"DialTimeout", o.DialTimeout}, {"PingAfterIdle", o.PingAfterIdle},
	} {
		if f.v < 0 {
			bad("%s is negative (%s)", f.name, f.v)
		}
	}
	d := o.withDefaults()
	if o.MaxOpen >= 0 && o.MaxIdle >= 0 && d.MaxIdle > d.MaxOpen {
		bad("MaxIdle (%d) > MaxOpen (%d)", d.MaxIdle, d.MaxOpen)
	}
	if o.MinIdle >= 0 && o.MaxIdle >= 0 && d.MinIdle > d.MaxIdle {
		bad("MinIdle (%d) > MaxIdle (%d)", d.MinIdle, d.MaxIdle)
	}
	if _, err := charset.GetCollationByName(d.Collation); err != nil {
		bad("unknown Collation %q", d.Collation)
	}
	return errors.Join(errs...)
}
