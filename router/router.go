package router

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/charset"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // value expressions for the parser

	"github.com/shardproxy/shardproxy/router/barrier"
	"github.com/shardproxy/shardproxy/router/txn"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Options configures a Router.
type Options struct {
	// Rules is the snapshot store read once per statement.
	Rules *rules.Store
	// Backend provides shard connections.
	Backend Backend
	// BaselineCollation is the collation backend connections are opened with (the pool's);
	// sessions whose client asked for it need no SET NAMES. Default utf8mb4_general_ci.
	BaselineCollation string
	// Logger; nil discards.
	Logger *slog.Logger
	// Metrics counts statement timeouts and backend kills; nil counts nothing.
	Metrics Metrics
	// Processes is the list of client connections that SHOW PROCESSLIST and KILL act on;
	// nil refuses them.
	Processes Processes
	// XAMetrics counts multi-shard commits; nil counts nothing.
	XAMetrics txn.XAMetrics
	// XATestHook, for tests only, is called at the points of a multi-shard commit:
	// "prepared" (every participant prepared, no decision yet) and "committed" (the decision
	// is durable, participants not yet committed). Nil in production.
	XATestHook func(point string)
	// ServerVersion is the version the handshake announces; @@version and VERSION() answer
	// it (without MariaDB's "5.5.5-" prefix for old clients). "" leaves them to the backend.
	ServerVersion string
	// MaxAllowedPacket is the proxy's limit on client packets, which @@max_allowed_packet
	// answers; 0 leaves it to the backend.
	MaxAllowedPacket int64
}

// Router turns client statements into backend work. It is safe for concurrent use; each
// client connection gets its own Session.
type Router struct {
	rules    *rules.Store
	be       Backend
	log      *slog.Logger
	metrics  Metrics
	procs    Processes
	baseline map[string]string
	xa       *txn.Coordinator // commits writes spanning shards
	version  string           // @@version and VERSION(); "" for the backend's
	maxPkt   int64            // @@max_allowed_packet; 0 for the backend's
}

// New returns a Router.
func New(o Options) *Router {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.BaselineCollation == "" {
		o.BaselineCollation = "utf8mb4_general_ci"
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	base := map[string]string{"autocommit": "1"}
	if coll, err := charset.GetCollationByName(o.BaselineCollation); err == nil {
		for k, v := range namesVars(coll.CharsetName, coll.Name) {
			base[k] = v
		}
	}
	r := &Router{rules: o.Rules, be: o.Backend, log: o.Logger, metrics: o.Metrics, procs: o.Processes, baseline: base,
		xa:      txn.NewCoordinator(txn.CoordinatorOptions{Metrics: o.XAMetrics, Logger: o.Logger, TestHook: o.XATestHook}),
		version: strings.TrimPrefix(o.ServerVersion, "5.5.5-"), maxPkt: o.MaxAllowedPacket}
	return r
}

// SessionInfo describes the client connection a session serves.
type SessionInfo struct {
	ConnID    uint32
	User      string
	Collation uint8 // collation id from the handshake
	FoundRows bool  // CLIENT_FOUND_ROWS: UPDATE reports matched rows, not changed ones (foundrows.go)
	// LocalFiles is CLIENT_LOCAL_FILES: the client sends files for LOAD DATA LOCAL INFILE
	// (loaddata.go).
	LocalFiles bool
	// TLSVersion and TLSCipher describe the client's TLS session with the proxy, as the
	// Ssl_version and Ssl_cipher status variables report it; both "" without TLS.
	TLSVersion, TLSCipher string
}

// NewSession starts a session for an authenticated client.
func (r *Router) NewSession(_ context.Context, info SessionInfo) (*Session, error) {
	snap := r.rules.Load()
	user, ok := snap.User(info.User)
	if !ok {
		return nil, sqlerr.New(sqlerr.ErAccessDenied, "Access denied for user '%s'", info.User)
	}
	s := &Session{
		r: r, info: info, user: user.Name, vars: newSessionVars(r.baseline),
		intr:   interrupts{metrics: r.metrics, log: r.log, connID: info.ConnID},
		held:   heldConns{be: r.be, log: r.log, connID: info.ConnID},
		procs:  processes{list: r.procs, connID: info.ConnID, user: user.Name},
		pinned: map[string]Conn{}, last: map[string]Conn{}, status: wire.StatusAutocommit,
	}
	if coll, err := charset.GetCollationByID(int(info.Collation)); err == nil && !barrier.EscapeUnsafe(coll.CharsetName) {
		s.vars.replace(namesVars(coll.CharsetName, coll.Name)) // an escape-unsafe one keeps the baseline (router/barrier)
	}
	return s, nil
}

// namesVars are the variables SET NAMES cs COLLATE coll sets, as SQL literals.
func namesVars(cs, coll string) map[string]string {
	q := func(s string) string { return wire.QuoteString(s) }
	return map[string]string{
		"character_set_client":     q(cs),
		"character_set_connection": q(cs),
		"character_set_results":    q(cs),
		"collation_connection":     q(coll),
	}
}
