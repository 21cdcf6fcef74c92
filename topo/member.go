package topo

import (
	"log/slog"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/pool"
	"github.com/shardproxy/shardproxy/rules"
)

// member is one backend server and its pool. Its settings never change: a reload that
// changes them replaces the member.
type member struct {
	cfg  rules.Backend
	pool *pool.Pool

	mu       sync.Mutex
	inUse    int                // connections handed out and not yet released
	draining bool               // no new connections; closed when inUse drops to 0
	idle     chan struct{}      // closed once draining and inUse == 0
	conns    map[*Conn]struct{} // the connections handed out (to interrupt on fencing)
}

func newMember(b *rules.Backend, log *slog.Logger) (*member, error) {
	p, err := pool.New(poolOptions(b, log))
	if err != nil {
		return nil, err
	}
	return &member{cfg: *b, pool: p, idle: make(chan struct{}), conns: map[*Conn]struct{}{}}, nil
}

func poolOptions(b *rules.Backend, log *slog.Logger) pool.Options {
	return pool.Options{
		Addr: b.Addr, User: b.User, Password: b.Password,
		MaxOpen: b.Pool.MaxOpen, MaxIdle: b.Pool.MaxIdle, MinIdle: b.Pool.MinIdle,
		MaxLifetime: time.Duration(b.Pool.MaxLifetime), IdleTimeout: time.Duration(b.Pool.IdleTimeout),
		AcquireTimeout: time.Duration(b.Pool.AcquireTimeout), DialTimeout: time.Duration(b.Pool.DialTimeout),
		KillReserve: true, // a deadline's KILL QUERY must not wait for a login (pool/killer.go)
		Logger:      log.With("backend", b.Name),
	}
}

// enter counts a connection about to be handed out; false once the member drains.
func (m *member) enter() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.draining {
		return false
	}
	m.inUse++
	return true
}

// leave uncounts a connection given back (or an acquire that failed).
func (m *member) leave() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inUse--
	if m.draining && m.inUse == 0 {
		close(m.idle)
	}
}

// drain stops new connections; the returned channel closes when none is in use.
func (m *member) drain() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.draining {
		m.draining = true
		if m.inUse == 0 {
			close(m.idle)
		}
	}
	return m.idle
}

// track records a connection handed out on m (counted by enter).
func (m *member) track(c *Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.conns[c] = struct{}{}
}

// untrack forgets a connection given back and uncounts it.
func (m *member) untrack(c *Conn) {
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
	m.leave()
}

// busy is the count of connections in use on m.
func (m *member) busy() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inUse
}

// interrupt cuts every connection handed out on m: their holders get an I/O error.
func (m *member) interrupt() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	for c := range m.conns {
		c.Conn.Interrupt()
	}
	return len(m.conns)
}
