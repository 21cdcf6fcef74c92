package pool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// connect dials the backend and completes the handshake, bounded by ctx and DialTimeout.
// The connection it returns is not counted by the pool: the caller accounts for it.
func (p *Pool) connect(ctx context.Context) (_ *Conn, err error) {
	// go-mysql decodes the greeting and the login's answers: a server that sends garbage
	// must fail this dial, not the process.
	var raw net.Conn
	defer func() {
		if r := recover(); r != nil {
			if raw != nil {
				_ = raw.Close()
			}
			p.log.Error("pool: backend handshake panicked", "addr", p.opts.Addr, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("pool: connect to %s: %w: malformed handshake (%v)", p.opts.Addr, wire.ErrMalformed, r)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, p.opts.DialTimeout)
	defer cancel()
	// go-mysql's handshake ignores ctx; a deadline on the socket bounds it instead, and a
	// past deadline set when ctx ends early interrupts it.
	var stop func() bool
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		raw = nc
		if dl, ok := ctx.Deadline(); ok {
			_ = nc.SetDeadline(dl)
		}
		stop = context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
		return nc, nil
	}
	cc, err := client.ConnectWithDialer(ctx, "tcp", p.opts.Addr, p.opts.User, p.opts.Password, "", dial, p.configure)
	interrupted := stop != nil && !stop()
	if err != nil {
		return nil, p.connectError(ctx, err)
	}
	nc := cc.Conn.Conn // the TLS conn when TLS was negotiated
	if interrupted {
		_ = nc.Close()
		return nil, p.connectError(ctx, ctx.Err())
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		_ = nc.Close()
		return nil, p.connectError(ctx, err)
	}
	return p.newConn(cc, nc), nil
}

// configure is the go-mysql option that sets the capabilities and collation of a backend
// connection. go-mysql accepts MULTI_RESULTS and PS_MULTI_RESULTS in SetCapability (they are
// among its optional capabilities); DEPRECATE_EOF and QUERY_ATTRIBUTES, which it sends by
// default, can only be switched off with UnsetCapability.
func (p *Pool) configure(c *client.Conn) error {
	c.UnsetCapability(mysql.CLIENT_DEPRECATE_EOF)
	c.UnsetCapability(mysql.CLIENT_QUERY_ATTRIBUTES)
	// LOCAL_FILES lets the router relay a client's LOAD DATA LOCAL file (the backend needs
	// local_infile=ON); a request the router did not expect breaks the connection.
	for _, flag := range []uint32{mysql.CLIENT_MULTI_RESULTS, mysql.CLIENT_PS_MULTI_RESULTS, mysql.CLIENT_LOCAL_FILES} {
		if err := c.SetCapability(flag); err != nil {
			return fmt.Errorf("capability 0x%x: %w", flag, err)
		}
	}
	if err := c.SetCollation(p.opts.Collation); err != nil {
		return err
	}
	if p.opts.TLS != nil {
		c.SetTLSConfig(p.opts.TLS)
	}
	c.SetAttributes(map[string]string{"program_name": "shardproxy"})
	return nil
}

// newConn wraps an established go-mysql connection; from here on all I/O goes through wire.
func (p *Pool) newConn(cc *client.Conn, nc net.Conn) *Conn {
	now := time.Now()
	c := &Conn{
		pool:    p,
		wc:      wire.NewConn(nc, wireBufSize),
		nc:      nc,
		id:      cc.GetConnectionID(),
		version: cc.GetServerVersion(),
		created: now,
	}
	c.peek.init(c)
	if cc.IsAutoCommit() {
		c.st.SetStatus(wire.StatusAutocommit)
	}
	if lt := p.opts.MaxLifetime; lt > 0 {
		jitter := time.Duration(rand.Float64() * lifetimeJitter * float64(lt))
		c.expires = now.Add(lt - jitter)
	}
	return c
}

// connectError wraps a dial or handshake error with the address. A backend ERR (go-mysql's
// *mysql.MyError, possibly inside pingcap/errors wrappers, which unwrap) becomes an
// *sqlerr.Error with the backend's code and SQLSTATE; a context error stays visible to
// errors.Is.
func (p *Pool) connectError(ctx context.Context, err error) error {
	var me *mysql.MyError
	if errors.As(err, &me) {
		err = &sqlerr.Error{Code: me.Code, State: me.State, Message: me.Message}
	}
	cerr := ctx.Err()
	if dl, ok := ctx.Deadline(); cerr == nil && ok && !time.Now().Before(dl) {
		// The socket's deadline is ctx's, and its i/o timeout can come a moment before
		// ctx's own timer marks ctx done: the timeout is still ctx's deadline.
		cerr = context.DeadlineExceeded
	}
	if cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("pool: connect to %s: %w: %w", p.opts.Addr, cerr, err)
	}
	return fmt.Errorf("pool: connect to %s: %w", p.opts.Addr, err)
}

// isBackendError reports whether err is an ERR sent by the backend (the connection is
// still usable after it).
func isBackendError(err error) bool {
	_, ok := sqlerr.As(err)
	return ok
}

// KillQuery interrupts the statement running on the backend connection connID with
// KILL QUERY, sent over the reserve connection (Options.KillReserve, killer.go) or else a
// separate short-lived connection; neither counts against MaxOpen. It is bounded by ctx and
// DialTimeout and may be called concurrently with anything, also after Close. The backend's
// error (e.g. 1094 unknown thread) is returned wrapped.
func (p *Pool) KillQuery(ctx context.Context, connID uint32) error {
	if ok, err := p.killOnReserve(ctx, connID); ok {
		return err
	}
	c, err := p.connect(ctx)
	if err != nil {
		return fmt.Errorf("pool: kill query %d: %w", connID, err)
	}
	defer c.retire()
	if _, err := c.Exec(ctx, "KILL QUERY "+strconv.FormatUint(uint64(connID), 10)); err != nil {
		return fmt.Errorf("pool: kill query %d: %w", connID, err)
	}
	return nil
}
