package protocol

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/sqlerr"
)

// The server owns connection ids: CONNECTION_ID(), SHOW PROCESSLIST and KILL all speak of
// them. Processes lists the authenticated connections; KillQuery and KillConnection act on
// one. Who may see or kill what is the caller's decision (the router knows the accounts).

// errShutdown is the cause of commands cancelled because the server closes every connection.
var errShutdown = fmt.Errorf("protocol: server shut down: %w", context.Canceled)

// Process describes one client connection, as a row of SHOW PROCESSLIST.
type Process struct {
	ID      uint32
	User    string
	Host    string        // client address, host:port
	DB      string        // current database ("" for none)
	Command string        // "Sleep" between commands, else the command's name ("Query", "Execute", ...)
	Time    time.Duration // in the current command, or idle
	State   string        // "executing" during a command
	Info    string        // the statement in progress, if the Session tells
}

// Describer is an optional interface of a Session: its current database and the statement
// it runs (empty between statements). It is called from other connections' goroutines and
// must be safe for concurrent use.
type Describer interface {
	Describe() (db, info string)
}

// Processes returns the authenticated connections, by id.
func (s *Server) Processes() []Process {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	now := time.Now()
	out := make([]Process, 0, len(conns))
	for _, c := range conns {
		if p, ok := c.process(now); ok {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b Process) int { return int(a.ID) - int(b.ID) })
	return out
}

// KillQuery cancels the command connection id is running, if any (KILL QUERY); the
// connection stays open. It reports false when there is no such authenticated connection.
func (s *Server) KillQuery(id uint32) bool {
	c := s.authenticated(id)
	if c == nil {
		return false
	}
	c.cancelCommand(sqlerr.ErrKilledQuery)
	return true
}

// KillConnection closes connection id and cancels its command in progress (KILL
// [CONNECTION]). It reports false when there is no such authenticated connection.
func (s *Server) KillConnection(id uint32) bool {
	c := s.authenticated(id)
	if c == nil {
		return false
	}
	c.mu.Lock()
	c.closing = true
	if c.stmtCancel != nil {
		c.stmtCancel(sqlerr.ErrKilledConnection)
	}
	c.mu.Unlock()
	_ = c.nc.Close()
	return true
}

func (s *Server) authenticated(id uint32) *conn {
	s.mu.Lock()
	c := s.conns[id]
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.user == "" {
		return nil
	}
	return c
}

// process describes c, if it is authenticated.
func (c *conn) process(now time.Time) (Process, bool) {
	c.mu.Lock()
	p := Process{ID: c.id, User: c.user, Host: c.nc.RemoteAddr().String(), Command: "Sleep", Time: now.Sub(c.since)}
	busy, sess := c.busy, c.session
	if busy {
		p.Command, p.State = commandName(c.command), "executing"
	}
	c.mu.Unlock()
	if p.User == "" {
		return Process{}, false
	}
	if d, ok := sess.(Describer); ok {
		p.DB, p.Info = d.Describe()
		if !busy {
			p.Info = ""
		}
	}
	return p, true
}

// commandName is the name MySQL shows for a command byte in the processlist.
func commandName(cmd byte) string {
	switch cmd {
	case mysql.COM_QUERY:
		return "Query"
	case mysql.COM_STMT_EXECUTE:
		return "Execute"
	case mysql.COM_STMT_PREPARE:
		return "Prepare"
	case mysql.COM_FIELD_LIST:
		return "Field List"
	case mysql.COM_INIT_DB:
		return "Init DB"
	case mysql.COM_PING:
		return "Ping"
	case mysql.COM_STATISTICS:
		return "Statistics"
	case mysql.COM_RESET_CONNECTION:
		return "Reset connection"
	case mysql.COM_STMT_CLOSE:
		return "Close stmt"
	case mysql.COM_STMT_RESET:
		return "Reset stmt"
	case mysql.COM_STMT_SEND_LONG_DATA:
		return "Long Data"
	case mysql.COM_SET_OPTION:
		return "Set option"
	case mysql.COM_QUIT:
		return "Quit"
	}
	return "Unknown"
}
