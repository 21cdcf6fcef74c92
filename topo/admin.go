package topo

import (
	"context"
	"fmt"
	"time"

	"github.com/shardproxy/shardproxy/pool"
)

// stepContext returns a context bounded by d that Close also cancels.
func (t *Topology) stepContext(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	done := make(chan struct{})
	t.drains.Go(func() {
		select {
		case <-t.stop:
			cancel()
		case <-done:
		}
	})
	return ctx, func() {
		close(done)
		cancel()
	}
}

// adminConn runs f on a connection of backend b's pool, fenced or not (failover statements
// are the fence itself). The connection is marked dirty: its session may have changed.
func (t *Topology) adminConn(ctx context.Context, b string, f func(*pool.Conn) error) error {
	t.mu.RLock()
	m := t.backends[b]
	t.mu.RUnlock()
	if m == nil || !m.enter() {
		return fmt.Errorf("topo: backend %s is gone", b)
	}
	defer m.leave()
	c, err := m.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer m.pool.Release(c)
	c.State().MarkDirty()
	return f(c)
}

// admin runs statements in order on backend b.
func (t *Topology) admin(ctx context.Context, b string, stmts ...string) error {
	return t.adminConn(ctx, b, func(c *pool.Conn) error {
		for _, q := range stmts {
			if _, err := c.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
}

// query runs one query on backend b and returns its rows.
func (t *Topology) query(ctx context.Context, b, q string) (*pool.Rows, error) {
	var rows *pool.Rows
	err := t.adminConn(ctx, b, func(c *pool.Conn) error {
		var err error
		rows, err = c.Query(ctx, q)
		return err
	})
	return rows, err
}
