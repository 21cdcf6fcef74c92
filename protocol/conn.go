package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// conn is one client connection. Its goroutine (serve) owns everything but the fields under
// mu, which Server.Shutdown and a future KILL use from other goroutines.
type conn struct {
	srv   *Server
	nc    net.Conn
	w     *wire.Conn
	out   resultWriter // c.w as the Session's ResultWriter, for the command in progress
	id    uint32
	log   *slog.Logger
	info  ConnInfo
	sess  Session
	multi bool // multi-statements currently enabled (capability, then COM_SET_OPTION)
	stmts stmtTable

	ctx    context.Context // lives as long as the connection
	cancel context.CancelCauseFunc

	mu         sync.Mutex
	busy       bool                    // a command is being executed
	closing    bool                    // close once the current command ends
	stmtCancel context.CancelCauseFunc // cancels the command in progress
	user       string                  // set once authenticated: listed in Processes from then on
	session    Session                 // c.sess, for Processes (its Describer)
	command    byte                    // command in progress (when busy)
	since      time.Time               // when the current command (or idleness) began
}

func newConn(s *Server, nc net.Conn, id uint32) *conn {
	ctx, cancel := context.WithCancelCause(context.Background())
	dc := &deadlineConn{Conn: nc, timeout: s.opts.WriteTimeout}
	c := &conn{
		srv: s, nc: nc, id: id, ctx: ctx, cancel: cancel,
		w:   wire.NewConn(dc, handshakeBufSize),
		log: s.log.With("conn_id", id, "remote", nc.RemoteAddr().String()),
	}
	c.w.MaxPacket = handshakeMaxPacket
	return c
}

// Before a client has logged in it controls how much memory its connection holds, so the
// connection starts small: handshakeBufSize read and write buffers and packets of at most
// handshakeMaxPacket bytes (a handshake response with connection attributes, an auth
// switch response or an RSA-encrypted password all fit in a few hundred bytes; MySQL bounds
// them likewise). After the login the buffers grow to connBufSize and packets may be as
// large as MaxAllowedPacket.
const (
	handshakeBufSize   = 4 << 10
	handshakeMaxPacket = 8 << 10
	connBufSize        = 32 << 10
)

// resultWriter is what a Session writes a result to: the client connection, remembering
// the first failed write so that a client gone mid-result is not answered (nor logged) as
// if the statement had failed.
type resultWriter struct {
	w        *wire.Conn
	err      error
	idle     time.Duration // bounds each read of a LOCAL INFILE file (infile.go)
	tooLarge bool          // a file packet was refused with 1153: drain before closing
}

func (r *resultWriter) WritePacket(p []byte) error {
	if r.err != nil {
		return r.err
	}
	r.err = r.w.WritePacket(p)
	return r.err
}

// deadlineConn refreshes the write deadline before each write, so a client that stops
// reading cannot hold a goroutine (and a backend connection) forever, while a long result
// that keeps flowing is never cut.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (d *deadlineConn) Write(b []byte) (int, error) {
	_ = d.Conn.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.Conn.Write(b)
}

// serve runs the connection until the client quits, an I/O error, or a shutdown.
func (c *conn) serve(tooMany bool) {
	defer c.cancel(nil)
	defer c.closeNet()
	// A panic closes this connection only ("connection lost, outcome unknown" for the
	// client); the session first drops what it holds as unusable.
	defer func() {
		r := recover()
		if r != nil {
			c.log.Error("connection panicked; closing it", "panic", r, "stack", string(debug.Stack()))
		}
		if c.sess == nil {
			return
		}
		if a, ok := c.sess.(Abandoner); ok && r != nil {
			a.Abandon()
		}
		c.sess.Close()
	}()
	if tooMany {
		c.rejectEarly(sqlerr.New(sqlerr.ErConCount, "Too many connections"))
		return
	}
	if err := c.handshake(); err != nil {
		c.log.Debug("handshake failed", "err", err)
		return
	}
	c.loop()
}

// Lingering close: a client whose packet was refused as too large is usually still
// sending it. Closing the socket with its bytes unread would reset the connection, and the
// client's write would fail before it reads the 1153 that explains why; so the proxy first
// half-closes, then reads and discards what is still coming, bounded in bytes and time.
const (
	lingerTimeout = 2 * time.Second
	lingerMax     = 64 << 20
)

// closeNet closes the client's socket, lingering first after a refused packet.
func (c *conn) closeNet() {
	if c.out.tooLarge {
		if hc, ok := c.nc.(interface{ CloseWrite() error }); ok {
			_ = hc.CloseWrite()
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.CopyN(io.Discard, c.nc, lingerMax)
	}
	_ = c.nc.Close()
}

// rejectEarly answers a connection that will not be served with an ERR packet in place of
// the handshake, as MySQL does.
func (c *conn) rejectEarly(e *sqlerr.Error) {
	_ = c.nc.SetDeadline(time.Now().Add(time.Second))
	_ = c.w.WritePacket(wire.AppendErr(nil, e))
	_ = c.w.Flush()
}

func (c *conn) loop() {
	for {
		if !c.setIdle() {
			return
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.IdleTimeout))
		c.w.ResetSeq()
		p, err := c.w.ReadPacket()
		if err != nil {
			c.readFailed(err)
			return
		}
		_ = c.nc.SetReadDeadline(time.Time{})
		ctx, ok := c.setBusy(p)
		if !ok {
			return
		}
		stopWatch := c.watchGone(func() { c.cancelCommand(sqlerr.ErrClientGone) })
		quit, err := c.dispatch(ctx, p)
		stopWatch()
		c.endCommand()
		c.w.TrimBuffer() // a large command's packet is not kept while the connection idles
		if err == nil {
			err = c.w.Flush()
		}
		if quit || err != nil {
			if err != nil && !errors.Is(err, net.ErrClosed) {
				c.log.Debug("closing connection", "err", err)
			}
			return
		}
	}
}

func (c *conn) readFailed(err error) {
	switch {
	case errors.Is(err, wire.ErrPacketTooLarge):
		_ = c.writeError(sqlerr.New(sqlerr.ErNetPacketTooLarge, "Got a packet bigger than 'max_allowed_packet' bytes"))
		_ = c.w.Flush()
		c.out.tooLarge = true
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.log.Info("closing idle connection", "idle_timeout", c.srv.opts.IdleTimeout)
			return
		}
		c.log.Debug("read failed", "err", err)
	}
}

// setIdle marks the connection as waiting for a command; false means it must close now.
func (c *conn) setIdle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy = false
	c.since = time.Now()
	return !c.closing && !c.srv.draining.Load()
}

// setBusy starts the command of packet p: its context, cancelled by cancelCommand.
func (c *conn) setBusy(p []byte) (context.Context, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return nil, false
	}
	c.busy = true
	c.since = time.Now()
	if len(p) > 0 {
		c.command = p[0]
	}
	ctx, cancel := context.WithCancelCause(c.ctx)
	c.stmtCancel = cancel
	return ctx, true
}

func (c *conn) endCommand() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stmtCancel != nil {
		c.stmtCancel(nil)
		c.stmtCancel = nil
	}
}

// cancelCommand cancels the command in progress, if any; cause says why (context.Cause).
func (c *conn) cancelCommand(cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stmtCancel != nil {
		c.stmtCancel(cause)
	}
}

// closeIfIdle closes a connection waiting for a command, or marks a busy one to close after
// its command (graceful shutdown).
func (c *conn) closeIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closing = true
	if !c.busy {
		_ = c.nc.Close()
	}
}

// abort closes the connection and cancels the command in progress (closing first, so the
// cancelled command cannot answer the client); cause says why (context.Cause).
func (c *conn) abort(cause error) {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	_ = c.nc.Close()
	c.cancel(cause)
}

// dispatch runs one command. It returns quit for COM_QUIT, and an error only when the
// connection can no longer be used; SQL errors are written to the client here.
func (c *conn) dispatch(ctx context.Context, p []byte) (quit bool, err error) {
	if len(p) == 0 {
		return false, c.writeError(sqlerr.New(sqlerr.ErMalformedPacket, "Malformed communication packet"))
	}
	c.srv.queries.Add(1)
	c.out = resultWriter{w: c.w, idle: c.srv.opts.IdleTimeout}
	cmd, data := p[0], p[1:]
	switch cmd {
	case mysql.COM_QUIT:
		return true, nil
	case mysql.COM_PING:
		return false, c.writeOK()
	case mysql.COM_QUERY:
		err = c.sess.Query(ctx, string(data), c.multi, &c.out)
	case mysql.COM_INIT_DB:
		if err = c.sess.UseDB(ctx, string(data)); err == nil {
			return false, c.writeOK()
		}
	case mysql.COM_FIELD_LIST:
		table, wildcard := splitNul(data)
		err = c.sess.FieldList(ctx, table, wildcard, &c.out)
	case mysql.COM_STATISTICS:
		return false, c.w.WritePacket([]byte(c.statistics()))
	case mysql.COM_SET_OPTION:
		return false, c.setOption(data)
	case mysql.COM_RESET_CONNECTION:
		c.stmts.reset(c.sess)
		if err = c.sess.Reset(ctx); err == nil {
			c.multi = c.info.Capabilities&mysql.CLIENT_MULTI_STATEMENTS != 0
			return false, c.writeOK()
		}
	case mysql.COM_STMT_PREPARE:
		err = c.prepare(ctx, string(data))
	case mysql.COM_STMT_EXECUTE:
		err = c.execute(ctx, data)
	case mysql.COM_STMT_SEND_LONG_DATA:
		c.stmts.longData(data, c.srv.opts.MaxAllowedPacket) // no response, even on error, as MySQL does
		return false, nil
	case mysql.COM_STMT_CLOSE:
		c.stmts.close(data, c.sess) // no response
		return false, nil
	case mysql.COM_STMT_RESET:
		err = c.stmts.resetStmt(data)
		if err == nil {
			return false, c.writeOK()
		}
	default:
		err = sqlerr.New(sqlerr.ErUnknownCom, "Unknown command %d", cmd)
	}
	if err != nil {
		if c.out.err != nil {
			// The client stopped taking the result (it went away): nothing to tell it.
			return false, c.out.err
		}
		if errors.Is(err, sqlerr.ErrLost) {
			// Outcome unknown: say it by closing, so the client's driver reports its own
			// 2013 (CR_SERVER_LOST); what was buffered of a result is dropped (no flush).
			c.log.Warn("closing the client connection: backend connection lost, outcome unknown", "err", err)
			return true, err
		}
		if werr := c.writeError(err); werr != nil {
			return false, werr
		}
		if errors.Is(err, sqlerr.ErrFatal) {
			_ = c.w.Flush()
			return true, nil
		}
	}
	return false, nil
}

func splitNul(b []byte) (string, string) {
	for i, x := range b {
		if x == 0 {
			return string(b[:i]), string(b[i+1:])
		}
	}
	return string(b), ""
}

func (c *conn) statistics() string {
	up := int(time.Since(c.srv.started).Seconds())
	return fmt.Sprintf("Uptime: %d  Threads: %d  Questions: %d  Slow queries: 0  Opens: 0  Open tables: 0  Queries per second avg: %.3f",
		up, c.srv.ConnCount(), c.srv.queries.Load(), float64(c.srv.queries.Load())/float64(max(up, 1)))
}

// setOption handles COM_SET_OPTION: 0 enables, 1 disables multi-statements; the answer is
// an EOF packet.
func (c *conn) setOption(data []byte) error {
	if len(data) < 2 || data[1] != 0 || data[0] > 1 {
		return c.writeError(sqlerr.New(sqlerr.ErUnknownCom, "Unknown COM_SET_OPTION value"))
	}
	c.multi = data[0] == 0
	return c.w.WritePacket(wire.AppendEOF(nil, 0, c.sess.Status()))
}

func (c *conn) writeOK() error {
	return c.w.WritePacket(wire.AppendOK(nil, wire.OK{Status: c.sess.Status()}))
}

// writeError is the protocol edge: it turns any error into an ERR packet.
func (c *conn) writeError(err error) error {
	e := toSQLError(err)
	if e.Code == sqlerr.ErUnknownError {
		c.log.Warn("internal error", "err", err)
	}
	return c.w.WritePacket(wire.AppendErr(nil, e))
}

// toSQLError maps an error to the MySQL error the client sees.
func toSQLError(err error) *sqlerr.Error {
	if e, ok := sqlerr.As(err); ok {
		return e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return sqlerr.New(sqlerr.ErQueryTimeout, "Query execution was interrupted, maximum statement execution time exceeded")
	case errors.Is(err, context.Canceled):
		return sqlerr.New(sqlerr.ErQueryInterrupted, "Query execution was interrupted")
	}
	return sqlerr.New(sqlerr.ErUnknownError, "%s", err.Error())
}
