package router

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/rules"
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

// activity is what other sessions may read of a session: its database and statement. The
// zero value is a session doing nothing; safe for concurrent use.
type activity struct {
	mu       sync.Mutex
	db, info string
}

// set records the session's current database and the statement it runs ("" for none).
func (a *activity) set(db, info string) {
	a.mu.Lock()
	a.db, a.info = db, info
	a.mu.Unlock()
}

// get returns what set recorded last.
func (a *activity) get() (db, info string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.db, a.info
}

// Describe returns the session's current database and the statement it runs. Unlike the
// rest of Session it is safe to call from any goroutine.
func (s *Session) Describe() (db, info string) { return s.act.get() }

// publish records the statement the session starts ("" when it is done) and its database.
func (s *Session) publish(info string) { s.act.set(s.db, info) }

// isAdmin reports whether user may see and kill every connection.
func isAdmin(snap *rules.Snapshot, user string) bool {
	u, ok := snap.User(user)
	return ok && u.Admin
}

// processes is the proxy's client connections as one session sees them: SHOW PROCESSLIST
// and KILL, limited to the connections of its user unless the user is an admin. The zero
// value (no list) refuses both. Safe to copy; its methods change nothing of the session.
type processes struct {
	list   Processes // nil: the proxy has no process list
	connID uint32    // the session's own connection
	user   string
}

// kill runs KILL [CONNECTION | QUERY] id for a user who is an admin or not; nil means the
// client gets an OK.
func (p processes) kill(n *ast.KillStmt, admin bool) error {
	if p.list == nil {
		return sqlerr.NotSupported("KILL without the proxy's process list")
	}
	id := n.ConnectionID
	if n.Expr != nil {
		f, ok := n.Expr.(*ast.FuncCallExpr)
		if !ok || f.FnName.L != "connection_id" {
			return sqlerr.NotSupported("KILL with an expression other than CONNECTION_ID()")
		}
		id = uint64(p.connID)
	}
	var target *Process
	for _, proc := range p.list.List() {
		if uint64(proc.ID) == id {
			target = &proc
			break
		}
	}
	if target == nil {
		return sqlerr.New(sqlerr.ErNoSuchThread, "Unknown thread id: %d", id)
	}
	if target.User != p.user && !admin {
		return sqlerr.New(sqlerr.ErKillDenied, "You are not owner of thread %d", id)
	}
	switch {
	case target.ID == p.connID && n.Query:
		// The statement running is this KILL: nothing else to interrupt.
	case target.ID == p.connID:
		return fmt.Errorf("%w: %w", sqlerr.ErrFatal, sqlerr.New(sqlerr.ErConnectionKilled, "Connection was killed"))
	case n.Query:
		p.list.KillQuery(target.ID)
	default:
		p.list.KillConnection(target.ID)
	}
	return nil
}

// processListInfoLen is how much of a statement SHOW PROCESSLIST shows without FULL.
const processListInfoLen = 100

// show answers SHOW [FULL] PROCESSLIST with the proxy's client connections the user (an
// admin or not) may see.
func (p processes) show(full, admin bool) (localResult, error) {
	if p.list == nil {
		return localResult{}, sqlerr.NotSupported("SHOW PROCESSLIST without the proxy's process list")
	}
	var rows [][]*string
	for _, proc := range p.list.List() {
		if proc.User != p.user && !admin {
			continue
		}
		id, secs := strconv.FormatUint(uint64(proc.ID), 10), strconv.FormatInt(int64(proc.Time/time.Second), 10)
		info := proc.Info
		if !full && len(info) > processListInfoLen {
			info = info[:processListInfoLen]
		}
		rows = append(rows, []*string{&id, ptr(proc.User), ptr(proc.Host), nullIfEmpty(proc.DB), ptr(proc.Command), &secs, ptr(proc.State), nullIfEmpty(info)})
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
