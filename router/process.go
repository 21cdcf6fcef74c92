package router

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// SHOW PROCESSLIST and KILL act on the proxy's own client connections, by proxy connection
// id (what CONNECTION_ID() returns), never on backend sessions. As in MySQL, a user sees and
// kills only connections of the same user, unless the user is an admin (users[].admin).

// Processes is the list of client connections, owned by the protocol server (wired in
// cmd/shardproxy). It must be safe for concurrent use.
type Processes interface {
	// List returns the authenticated connections.
	List() []Process
	// KillQuery cancels the statement connection id runs; false if there is no such connection.
	KillQuery(id uint32) bool
	// KillConnection closes connection id; false if there is no such connection.
	KillConnection(id uint32) bool
}

// Process is one client connection as SHOW PROCESSLIST shows it.
type Process struct {
	ID                      uint32
	User, Host, DB, Command string
	Time                    time.Duration
	State, Info             string
}

// activity is what other sessions may read of a session: its database and statement.
type activity struct {
	mu       sync.Mutex
	db, info string
}

// Describe returns the session's current database and the statement it runs. Unlike the
// rest of Session it is safe to call from any goroutine.
func (s *Session) Describe() (db, info string) {
	s.act.mu.Lock()
	defer s.act.mu.Unlock()
	return s.act.db, s.act.info
}

// publish records the statement the session starts ("" when it is done) and its database.
func (s *Session) publish(info string) {
	s.act.mu.Lock()
	s.act.db, s.act.info = s.db, info
	s.act.mu.Unlock()
}

// isAdmin reports whether the session's user may see and kill every connection.
func (s *Session) isAdmin() bool {
	u, ok := s.r.rules.Load().User(s.user)
	return ok && u.Admin
}

// kill runs KILL [CONNECTION | QUERY] id.
func (s *Session) kill(n *ast.KillStmt, more bool, w wire.PacketWriter) error {
	if s.r.procs == nil {
		return sqlerr.NotSupported("KILL without the proxy's process list")
	}
	id := n.ConnectionID
	if n.Expr != nil {
		f, ok := n.Expr.(*ast.FuncCallExpr)
		if !ok || f.FnName.L != "connection_id" {
			return sqlerr.NotSupported("KILL with an expression other than CONNECTION_ID()")
		}
		id = uint64(s.info.ConnID)
	}
	var target *Process
	for _, p := range s.r.procs.List() {
		if uint64(p.ID) == id {
			target = &p
			break
		}
	}
	if target == nil {
		return sqlerr.New(sqlerr.ErNoSuchThread, "Unknown thread id: %d", id)
	}
	if target.User != s.user && !s.isAdmin() {
		return sqlerr.New(sqlerr.ErKillDenied, "You are not owner of thread %d", id)
	}
	switch {
	case target.ID == s.info.ConnID && n.Query:
		// The statement running is this KILL: nothing else to interrupt.
	case target.ID == s.info.ConnID:
		return fmt.Errorf("%w: %w", sqlerr.ErrFatal, sqlerr.New(sqlerr.ErConnectionKilled, "Connection was killed"))
	case n.Query:
		s.r.procs.KillQuery(target.ID)
	default:
		s.r.procs.KillConnection(target.ID)
	}
	return s.writeOK(w, more)
}

// processListInfoLen is how much of a statement SHOW PROCESSLIST shows without FULL.
const processListInfoLen = 100

// showProcessList answers SHOW [FULL] PROCESSLIST with the proxy's client connections the
// user may see.
func (s *Session) showProcessList(full bool) (localResult, error) {
	if s.r.procs == nil {
		return localResult{}, sqlerr.NotSupported("SHOW PROCESSLIST without the proxy's process list")
	}
	admin := s.isAdmin()
	var rows [][]*string
	for _, p := range s.r.procs.List() {
		if p.User != s.user && !admin {
			continue
		}
		id, secs := strconv.FormatUint(uint64(p.ID), 10), strconv.FormatInt(int64(p.Time/time.Second), 10)
		info := p.Info
		if !full && len(info) > processListInfoLen {
			info = info[:processListInfoLen]
		}
		rows = append(rows, []*string{&id, ptr(p.User), ptr(p.Host), nullIfEmpty(p.DB), ptr(p.Command), &secs, ptr(p.State), nullIfEmpty(info)})
	}
	str := func(name string, length uint32, notNull bool) wire.Column {
		c := wire.Column{Schema: "information_schema", Table: "PROCESSLIST", OrgTable: "PROCESSLIST", Name: name, OrgName: name,
			Charset: 45, Length: length, Type: mysql.MYSQL_TYPE_VAR_STRING}
		if notNull {
			c.Flags = mysql.NOT_NULL_FLAG
		}
		return c
	}
	num := func(name string, t byte) wire.Column {
		return wire.Column{Schema: "information_schema", Table: "PROCESSLIST", OrgTable: "PROCESSLIST", Name: name, OrgName: name,
			Charset: 63, Length: 21, Type: t, Flags: mysql.NOT_NULL_FLAG | mysql.NUM_FLAG}
	}
	cols := []wire.Column{
		num("Id", mysql.MYSQL_TYPE_LONGLONG), str("User", 512, true), str("Host", 1024, true), str("db", 256, false),
		str("Command", 64, true), num("Time", mysql.MYSQL_TYPE_LONG), str("State", 256, false), str("Info", 400000, false),
	}
	return localResult{cols: cols, rows: rows}, nil
}

func ptr(s string) *string { return &s }

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
