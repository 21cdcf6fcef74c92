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
