package protocol

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Server. The zero value of each field selects the documented default.
type Options struct {
	// ServerVersion is announced in the handshake and answers SELECT VERSION() when the
	// proxy answers it itself. Default "5.5.5-10.11.0-MariaDB-shardproxy" (the "5.5.5-"
	// prefix is how MariaDB servers announce themselves to MySQL clients).
	ServerVersion string
	// TLS enables CLIENT_SSL when set.
	TLS *tls.Config
	// MaxAllowedPacket bounds a client packet; a larger one gets ER_NET_PACKET_TOO_LARGE and
	// the connection is closed, as MySQL does. Default 64 MiB.
	MaxAllowedPacket int
	// HandshakeTimeout bounds the whole login. Default 10s.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection that sends no command for this long (wait_timeout).
	// Default 8h.
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to a client that stopped reading. Default 60s.
	WriteTimeout time.Duration
	// MaxConnections bounds concurrent client connections; more get ER_CON_COUNT_ERROR.
	// Default 4096.
	MaxConnections int
	// Logger receives connection-level events. Default: discard.
	Logger *slog.Logger
}

// Defaults of Options that the router also answers for (@@version, @@max_allowed_packet).
const (
	DefaultServerVersion    = "5.5.5-10.11.0-MariaDB-shardproxy"
	DefaultMaxAllowedPacket = 64 << 20
)

func (o *Options) setDefaults() {
	if o.ServerVersion == "" {
		o.ServerVersion = DefaultServerVersion
	}
	if o.MaxAllowedPacket == 0 {
		o.MaxAllowedPacket = DefaultMaxAllowedPacket
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 8 * time.Hour
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 60 * time.Second
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = 4096
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	switch {
	case o.MaxAllowedPacket < 0 || (o.MaxAllowedPacket > 0 && o.MaxAllowedPacket < 1024):
		return fmt.Errorf("protocol: max allowed packet %d is below 1024 bytes", o.MaxAllowedPacket)
	case o.HandshakeTimeout < 0, o.IdleTimeout < 0, o.WriteTimeout < 0:
		return errors.New("protocol: timeouts must not be negative")
	case o.MaxConnections < 0:
		return errors.New("protocol: max connections must not be negative")
	}
	return nil
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("protocol: server closed")

// Server accepts MySQL client connections and runs one goroutine per connection. It owns
// those goroutines: Shutdown and Close wait for them.
type Server struct {
	opts     Options
	handler  Handler
	users    UserStore
	log      *slog.Logger
	rsa      rsaKey
	sha2     sha2Cache
	nextID   atomic.Uint32
	started  time.Time
	queries  atomic.Uint64
	refused  atomic.Uint64 // connections refused for max_connections
	draining atomic.Bool

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[uint32]*conn
	wg        sync.WaitGroup
	closed    bool
}

// NewServer returns a server that authenticates against users and hands sessions to h.
func NewServer(opts Options, users UserStore, h Handler) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	return &Server{
		opts: opts, handler: h, users: users, log: opts.Logger, started: time.Now(),
		listeners: make(map[net.Listener]struct{}), conns: make(map[uint32]*conn),
	}, nil
}

// Serve accepts connections on ln until Shutdown or Close, and then returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("protocol: accept: %w", err)
		}
		backoff = 0
		s.start(nc)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) start(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		_ = tc.SetKeepAlive(true)
	}
	id := s.nextID.Add(1)
	c := newConn(s, nc, id)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	tooMany := len(s.conns) >= s.opts.MaxConnections
	if tooMany {
		s.refused.Add(1)
	}
	s.conns[id] = c
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.conns, id)
			s.mu.Unlock()
		}()
		c.serve(tooMany)
	}()
}

// Shutdown stops accepting, lets statements in progress finish, closes connections as they
// become idle, and waits for all of them until ctx is done; then it closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.draining.Store(true)
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for _, c := range s.conns {
		c.closeIfIdle()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.closeAll()
		<-done
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once, and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	s.mu.Unlock()
	s.closeAll()
	s.wg.Wait()
	return nil
}

func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.abort(errShutdown)
	}
}

// ConnStats returns the client connections open now, accepted since start (refused ones
// included) and refused because max_connections were open.
func (s *Server) ConnStats() (current int, accepted, refused uint64) {
	return s.ConnCount(), uint64(s.nextID.Load()), s.refused.Load()
}

// ConnCount returns the number of open client connections.
func (s *Server) ConnCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
