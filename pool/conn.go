package pool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/wire"
)

// wireBufSize is the read and write buffer size of a backend connection's wire.Conn.
const wireBufSize = 64 << 10

// closeTimeout bounds the COM_QUIT sent when a healthy connection is retired.
const closeTimeout = 100 * time.Millisecond

// ErrBroken is returned by Conn methods once the connection's protocol state is unknown.
var ErrBroken = errors.New("pool: connection is broken")

// Conn is one backend connection, handed out by Pool.Acquire and given back with
// Pool.Release.
//
// A Conn is used by one goroutine at a time: the holder between Acquire and Release. Its
// session bookkeeping (State: variables, database, the statement cache) belongs to that holder and survives
// reuse through the pool; a reset (COM_RESET_CONNECTION) clears it.
type Conn struct {
	pool    *Pool
	wc      *wire.Conn
	nc      net.Conn
	id      uint32
	version string
	created time.Time
	expires time.Time // zero: no lifetime limit

	// Guarded by pool.mu.
	inUse    bool
	lastUsed time.Time // when it last went idle

	// Owned by the holder.
	st   wire.ConnState
	cmd  []byte // scratch buffer for command packets
	peek peeker // closedByServer's syscall, prepared once
}

// Wire returns the connection's packet framer for relaying. The caller calls ResetSeq before
// each command, flushes before reading, and must call MarkBroken if an exchange is left
// unfinished or fails.
func (c *Conn) Wire() *wire.Conn { return c.wc }

// ID returns the backend's connection id (the argument of KILL QUERY).
func (c *Conn) ID() uint32 { return c.id }

// ServerVersion returns the version string of the backend's greeting.
func (c *Conn) ServerVersion() string { return c.version }

// Created returns when the connection was dialled.
func (c *Conn) Created() time.Time { return c.created }

// State is the connection's session bookkeeping: broken and dirty marks, last status, default
// database, variables applied, statements prepared. Release reads the marks; a reset clears
// the variables and statements.
func (c *Conn) State() *wire.ConnState { return &c.st }

// Exec sends a text query, drains and discards its results (all of them, for multi-results)
// and returns the final OK: affected rows, last insert id, status, warnings. A backend error
// is returned wrapped as a *sqlerr.Error with the backend's code and SQLSTATE.
//
// Exec honours ctx: when ctx is done mid-query it unblocks the socket, marks the connection
// broken and returns an error wrapping ctx.Err(). It does not kill the query on the backend
// (see Pool.KillQuery).
func (c *Conn) Exec(ctx context.Context, query string) (wire.OK, error) {
	var ok wire.OK
	err := c.withContext(ctx, func() error {
		if err := c.writeCommand(mysql.COM_QUERY, query); err != nil {
			return err
		}
		var err error
		ok, err = c.readResults()
		return err
	})
	if err != nil {
		return ok, fmt.Errorf("pool: exec on %s (conn %d): %w", c.pool.opts.Addr, c.id, err)
	}
	return ok, nil
}

// Ping sends COM_PING and waits for its OK, bounded by ctx.
func (c *Conn) Ping(ctx context.Context) error {
	err := c.withContext(ctx, func() error { return c.simpleCommand(mysql.COM_PING) })
	if err != nil {
		return fmt.Errorf("pool: ping %s (conn %d): %w", c.pool.opts.Addr, c.id, err)
	}
	return nil
}

// Reset sends COM_RESET_CONNECTION, which rolls back any transaction and restores the
// session to its state right after the handshake: system and user variables, character set
// (back to the pool's Collation), autocommit, temporary tables, locks, prepared statements.
// On success it clears the variables, the statement cache and the dirty mark (State); on failure the
// connection is marked broken.
//
// MariaDB 10.11 keeps the default database across the reset (pinned by the tests), so DB is
// kept too.
func (c *Conn) Reset(ctx context.Context) error {
	err := c.withContext(ctx, func() error { return c.simpleCommand(comResetConnection) })
	if err != nil {
		c.st.MarkBroken()
		return fmt.Errorf("pool: reset %s (conn %d): %w", c.pool.opts.Addr, c.id, err)
	}
	c.st.Reset()
	return nil
}

// comResetConnection is COM_RESET_CONNECTION (go-mysql has no constant for it).
const comResetConnection = 0x1f

// withContext runs the I/O in f with ctx able to interrupt it: when ctx is done, a past
// deadline on the socket unblocks f. Afterwards the connection is broken if f failed or ctx
// fired, and the returned error wraps ctx.Err() when ctx was the cause.
func (c *Conn) withContext(ctx context.Context, f func() error) error {
	if c.st.Broken() {
		return ErrBroken
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	}
	err := f()
	if stop != nil && !stop() {
		// The deadline was (or is being) set: the socket is unusable whatever f returned.
		c.st.MarkBroken()
		if err == nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	if err != nil && !isBackendError(err) {
		c.st.MarkBroken()
	}
	return err
}

// writeCommand sends one command packet: cmd followed by arg.
func (c *Conn) writeCommand(cmd byte, arg string) error {
	c.cmd = append(append(c.cmd[:0], cmd), arg...)
	c.wc.ResetSeq()
	if err := c.wc.WritePacket(c.cmd); err != nil {
		return err
	}
	if cap(c.cmd) > wireBufSize {
		c.cmd = nil // do not keep a huge query's buffer alive
	}
	return c.wc.Flush()
}

// simpleCommand sends a command without argument that is answered by OK or ERR.
func (c *Conn) simpleCommand(cmd byte) error {
	if err := c.writeCommand(cmd, ""); err != nil {
		return err
	}
	p, err := c.wc.ReadPacket()
	if err != nil {
		return err
	}
	return c.handleOKOrErr(p)
}

// handleOKOrErr interprets the packet that ends a command: OK or ERR.
func (c *Conn) handleOKOrErr(p []byte) error {
	switch {
	case wire.IsErr(p):
		return wire.ParseErr(p)
	case len(p) > 0 && p[0] == wire.OKHeader:
		ok, err := wire.ParseOK(p)
		if err != nil {
			return err
		}
		c.st.SetStatus(ok.Status)
		return nil
	default:
		return fmt.Errorf("%w: unexpected packet 0x%02x", wire.ErrMalformed, firstByte(p))
	}
}

// readResults reads every result of a COM_QUERY and returns the last OK (for a result set,
// an OK built from its closing EOF).
func (c *Conn) readResults() (wire.OK, error) {
	for {
		p, err := c.wc.ReadPacket()
		if err != nil {
			return wire.OK{}, err
		}
		var ok wire.OK
		switch {
		case len(p) == 0:
			return wire.OK{}, fmt.Errorf("%w: empty packet", wire.ErrMalformed)
		case wire.IsErr(p):
			return wire.OK{}, wire.ParseErr(p)
		case p[0] == wire.OKHeader:
			if ok, err = wire.ParseOK(p); err != nil {
				return ok, err
			}
		case p[0] == wire.LocalInfileHeader:
			if ok, err = c.refuseLocalInfile(); err != nil {
				return ok, err
			}
		default:
			if ok, err = c.drainResultSet(); err != nil {
				return ok, err
			}
		}
		c.st.SetStatus(ok.Status)
		if ok.Status&wire.StatusMoreResults == 0 {
			return ok, nil
		}
	}
}

// refuseLocalInfile answers a LOCAL INFILE request with an empty file and reads the result.
func (c *Conn) refuseLocalInfile() (wire.OK, error) {
	if err := c.wc.WritePacket(nil); err != nil {
		return wire.OK{}, err
	}
	if err := c.wc.Flush(); err != nil {
		return wire.OK{}, err
	}
	p, err := c.wc.ReadPacket()
	if err != nil {
		return wire.OK{}, err
	}
	if wire.IsErr(p) {
		return wire.OK{}, wire.ParseErr(p)
	}
	return wire.ParseOK(p)
}

// drainResultSet reads the column definitions and rows of a result set whose column-count
// packet was just read, and returns its closing EOF as an OK.
func (c *Conn) drainResultSet() (wire.OK, error) {
	if _, err := c.skipToEOF(); err != nil { // column definitions
		return wire.OK{}, err
	}
	return c.skipToEOF() // rows
}

// skipToEOF reads packets up to and including an EOF, which it returns as an OK.
func (c *Conn) skipToEOF() (wire.OK, error) {
	for {
		p, err := c.wc.ReadPacket()
		if err != nil {
			return wire.OK{}, err
		}
		if wire.IsErr(p) {
			return wire.OK{}, wire.ParseErr(p)
		}
		if !wire.IsEOF(p) {
			continue
		}
		if len(p) < 5 {
			return wire.OK{}, fmt.Errorf("%w: short EOF packet", wire.ErrMalformed)
		}
		return wire.OK{
			Warnings: binary.LittleEndian.Uint16(p[1:]),
			Status:   binary.LittleEndian.Uint16(p[3:]),
		}, nil
	}
}

func firstByte(p []byte) byte {
	if len(p) == 0 {
		return 0
	}
	return p[0]
}

// retire closes the connection. A healthy one first gets COM_QUIT, so the server logs a
// clean disconnect; the write is bounded by closeTimeout.
func (c *Conn) retire() {
	if !c.st.Broken() {
		_ = c.nc.SetDeadline(time.Now().Add(closeTimeout))
		if c.writeCommand(mysql.COM_QUIT, "") != nil {
			c.st.MarkBroken()
		}
	}
	c.st.MarkBroken()
	_ = c.nc.Close()
}

// KillQuery stops the statement c is running with KILL QUERY sent over a separate
// connection to c's backend: the pool's reserve, or a short-lived one (see Pool.KillQuery). Unlike the other methods it
// may be called from any goroutine while the holder uses c: it reads only c's immutable id
// and pool.
func (c *Conn) KillQuery(ctx context.Context) error { return c.pool.KillQuery(ctx, c.id) }

// Interrupt makes every blocked and future read or write on c fail at once (a past socket
// deadline), so whoever holds c gets an I/O error and marks it broken. Like KillQuery it may
// be called from any goroutine; it is how the owner of a fenced backend cuts its connections.
func (c *Conn) Interrupt() { _ = c.nc.SetDeadline(time.Unix(1, 0)) }
