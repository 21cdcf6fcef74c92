package topo

import (
	"github.com/shardproxy/shardproxy/pool"
	"github.com/shardproxy/shardproxy/router"
)

// Conn is a backend connection handed out by Topology.Acquire: a pool connection that knows
// the backend server it runs on. It satisfies router.Conn; like a pool.Conn it is used by
// one goroutine at a time, except KillQuery, which any goroutine may call.
type Conn struct {
	*pool.Conn
	m *member
}

var _ router.Conn = (*Conn)(nil)

// Server returns the name of the backend the connection runs on.
func (c *Conn) Server() string { return c.m.cfg.Name }

// Stmt returns the statement prepared on this connection for sql, if any.
func (c *Conn) Stmt(sql string) (router.BackendStmt, bool) {
	s, ok := c.Conn.Stmt(sql)
	return router.BackendStmt{ID: s.ID, Params: s.Params, Columns: s.Columns}, ok
}

// SetStmt records a statement prepared on this connection for sql.
func (c *Conn) SetStmt(sql string, s router.BackendStmt) {
	c.Conn.SetStmt(sql, pool.Stmt{ID: s.ID, Params: s.Params, Columns: s.Columns})
}
