package topo

import (
	"github.com/shardproxy/shardproxy/pool"
	"github.com/shardproxy/shardproxy/router/engine"
)

// Conn is a backend connection handed out by Topology.Acquire: a pool connection that knows
// the backend server it runs on. It satisfies engine.Conn; like a pool.Conn it is used by
// one goroutine at a time, except KillQuery, which any goroutine may call.
type Conn struct {
	*pool.Conn
	m *member
}

var _ engine.Conn = (*Conn)(nil)

// Server returns the name of the backend the connection runs on.
func (c *Conn) Server() string { return c.m.cfg.Name }

// Stmt returns the statement prepared on this connection for sql, if any.
func (c *Conn) Stmt(sql string) (engine.Stmt, bool) {
	s, ok := c.Conn.Stmt(sql)
	return engine.Stmt{ID: s.ID, Params: s.Params, Columns: s.Columns}, ok
}

// SetStmt records a statement prepared on this connection for sql.
func (c *Conn) SetStmt(sql string, s engine.Stmt) {
	c.Conn.SetStmt(sql, pool.Stmt{ID: s.ID, Params: s.Params, Columns: s.Columns})
}
