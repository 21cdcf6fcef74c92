package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/pool"
	"github.com/shardproxy/shardproxy/protocol"
	"github.com/shardproxy/shardproxy/router"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// cluster is the router's Backend: one pool per backend server, found by name.
type cluster struct {
	log   *slog.Logger
	mu    sync.RWMutex
	pools map[string]*pool.Pool
}

var (
	_ router.Backend           = (*cluster)(nil)
	_ router.PreferringBackend = (*cluster)(nil)
	_ router.Conn              = (*backendConn)(nil)
)

// newCluster opens (lazily: no dial happens here) a pool for every backend of snap.
func newCluster(snap *rules.Snapshot, log *slog.Logger) (*cluster, error) {
	c := &cluster{log: log, pools: map[string]*pool.Pool{}}
	for _, b := range snap.Backends() {
		p, err := pool.New(poolOptions(b, log))
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("backend %s: %w", b.Name, err)
		}
		c.pools[b.Name] = p
	}
	return c, nil
}

func poolOptions(b *rules.Backend, log *slog.Logger) pool.Options {
	return pool.Options{
		Addr: b.Addr, User: b.User, Password: b.Password,
		MaxOpen: b.Pool.MaxOpen, MaxIdle: b.Pool.MaxIdle, MinIdle: b.Pool.MinIdle,
		MaxLifetime: durationOf(b.Pool.MaxLifetime), IdleTimeout: durationOf(b.Pool.IdleTimeout),
		AcquireTimeout: durationOf(b.Pool.AcquireTimeout), DialTimeout: durationOf(b.Pool.DialTimeout),
		Logger: log.With("backend", b.Name),
	}
}

func (c *cluster) pool(b *rules.Backend) (*pool.Pool, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	p, ok := c.pools[b.Name]
	if !ok {
		return nil, fmt.Errorf("shardproxy: no pool for backend %s", b.Name)
	}
	return p, nil
}

func (c *cluster) Acquire(ctx context.Context, shard *rules.Shard) (router.Conn, error) {
	return c.AcquirePreferring(ctx, shard, nil)
}

func (c *cluster) AcquirePreferring(ctx context.Context, shard *rules.Shard, prefer router.Conn) (router.Conn, error) {
	p, err := c.pool(shard.Primary)
	if err != nil {
		return nil, err
	}
	var hint *pool.Conn
	if bc, ok := prefer.(*backendConn); ok && bc.p == p {
		hint = bc.Conn
	}
	pc, err := p.AcquireMatching(ctx, hint, shard.Database)
	switch {
	case err == nil:
	case errors.Is(err, pool.ErrAcquireTimeout):
		return nil, sqlerr.New(sqlerr.ErConCount,
			"Too many connections: the pool of backend %s (shard %s) is exhausted: %v", shard.Primary.Name, shard.Name, err)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		// The statement's deadline ran out while it waited for a connection or dialled.
		return nil, fmt.Errorf("%w: %w", sqlerr.New(sqlerr.ErQueryTimeout,
			"Query execution was interrupted, maximum statement execution time exceeded (waiting for a connection to backend %s of shard %s: %v)",
			shard.Primary.Name, shard.Name, err), context.Cause(ctx))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return nil, err
	default:
		// Even a backend's own ERR (say, 1045 for the proxy's backend credentials) is the
		// proxy's problem, not the client's: report it as an unreachable backend.
		return nil, sqlerr.New(sqlerr.ErCantConnect,
			"Can't connect to backend %s of shard %s: %v", shard.Primary.Name, shard.Name, err)
	}
	return &backendConn{Conn: pc, p: p}, nil
}

func (c *cluster) Release(rc router.Conn) {
	bc := rc.(*backendConn)
	bc.p.Release(bc.Conn)
}

func (c *cluster) KillQuery(ctx context.Context, shard *rules.Shard, id uint32) error {
	p, err := c.pool(shard.Primary)
	if err != nil {
		return err
	}
	return p.KillQuery(ctx, id)
}

// Close closes every pool.
func (c *cluster) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, p := range c.pools {
		_ = p.Close()
		delete(c.pools, name)
	}
}

// backendConn adapts a pool connection to router.Conn.
type backendConn struct {
	*pool.Conn
	p        *pool.Pool
	acquired time.Time // for the backend query latency metric
	backend  string    // the backend's name, for the same
}

func (b *backendConn) Stmt(sql string) (router.BackendStmt, bool) {
	s, ok := b.Conn.Stmt(sql)
	return router.BackendStmt{ID: s.ID, Params: s.Params, Columns: s.Columns}, ok
}

func (b *backendConn) SetStmt(sql string, s router.BackendStmt) {
	b.Conn.SetStmt(sql, pool.Stmt{ID: s.ID, Params: s.Params, Columns: s.Columns})
}

// handler adapts the router to protocol.Handler.
type handler struct {
	r *router.Router
	m *statementMetrics // nil: no statement metrics
}

var _ protocol.Handler = handler{}

func (h handler) NewSession(ctx context.Context, info protocol.ConnInfo) (protocol.Session, error) {
	s, err := h.r.NewSession(ctx, router.SessionInfo{ConnID: info.ID, User: info.User, Collation: info.Collation})
	if err != nil {
		return nil, err
	}
	if h.m != nil {
		return observedSession{session: session{s}, m: h.m}, nil
	}
	return session{s}, nil
}

// session adapts router.Session to protocol.Session: the prepared-statement methods differ
// only in their statement type.
type session struct{ *router.Session }

func (s session) Prepare(ctx context.Context, sql string) (protocol.Prepared, error) {
	return s.Session.Prepare(ctx, sql)
}

func (s session) Execute(ctx context.Context, p protocol.Prepared, params []protocol.Param, _ bool, w protocol.ResultWriter) error {
	return s.Session.Execute(ctx, p.(*router.Stmt), params, w)
}

func (s session) CloseStmt(p protocol.Prepared) { s.Session.CloseStmt(p.(*router.Stmt)) }

// processes adapts the protocol server's connection list to router.Processes. srv is set
// once, after the server is made and before it serves.
type processes struct{ srv *protocol.Server }

var _ router.Processes = (*processes)(nil)

func (p *processes) List() []router.Process {
	ps := p.srv.Processes()
	out := make([]router.Process, len(ps))
	for i, x := range ps {
		out[i] = router.Process{ID: x.ID, User: x.User, Host: x.Host, DB: x.DB, Command: x.Command, Time: x.Time, State: x.State, Info: x.Info}
	}
	return out
}

func (p *processes) KillQuery(id uint32) bool      { return p.srv.KillQuery(id) }
func (p *processes) KillConnection(id uint32) bool { return p.srv.KillConnection(id) }

// users adapts the rules store to protocol.UserStore: each login reads the current snapshot.
type users struct{ store *rules.Store }

func (u users) LookupUser(name string) (protocol.Credential, bool) {
	usr, ok := u.store.Load().User(name)
	if !ok {
		return protocol.Credential{}, false
	}
	return protocol.Credential{Hash: usr.PasswordHash}, true
}
