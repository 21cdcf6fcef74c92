package pool

import (
	"container/list"
	"encoding/binary"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// MaxStmts bounds a connection's prepared statement cache; the least recently used statement
// is closed on the backend when a new one would exceed it.
const MaxStmts = 256

// Stmt is a statement prepared on one backend connection.
type Stmt struct {
	ID      uint32 // the backend's statement id
	Params  int    // number of parameters
	Columns int    // number of result columns
}

// stmtCache maps SQL text to prepared statements, least recently used last. The zero value
// is empty and ready to use.
type stmtCache struct {
	m   map[string]*list.Element // values of lru: *stmtEntry
	lru list.List
}

type stmtEntry struct {
	sql  string
	stmt Stmt
}

func (sc *stmtCache) get(sql string) (Stmt, bool) {
	e, ok := sc.m[sql]
	if !ok {
		return Stmt{}, false
	}
	sc.lru.MoveToFront(e)
	return e.Value.(*stmtEntry).stmt, true
}

// put adds or replaces sql's statement and returns the statements that are no longer
// cached: a replaced one with another id, and the least recently used beyond MaxStmts.
func (sc *stmtCache) put(sql string, s Stmt) (dropped []Stmt) {
	if sc.m == nil {
		sc.m = make(map[string]*list.Element)
	}
	if e, ok := sc.m[sql]; ok {
		ent := e.Value.(*stmtEntry)
		if ent.stmt.ID != s.ID {
			dropped = append(dropped, ent.stmt)
		}
		ent.stmt = s
		sc.lru.MoveToFront(e)
		return dropped
	}
	sc.m[sql] = sc.lru.PushFront(&stmtEntry{sql: sql, stmt: s})
	for sc.lru.Len() > MaxStmts {
		ent := sc.lru.Remove(sc.lru.Back()).(*stmtEntry)
		delete(sc.m, ent.sql)
		dropped = append(dropped, ent.stmt)
	}
	return dropped
}

func (sc *stmtCache) remove(sql string) (Stmt, bool) {
	e, ok := sc.m[sql]
	if !ok {
		return Stmt{}, false
	}
	sc.lru.Remove(e)
	delete(sc.m, sql)
	return e.Value.(*stmtEntry).stmt, true
}

func (sc *stmtCache) clear() {
	clear(sc.m)
	sc.lru.Init()
}

// Stmt returns the statement prepared on this connection for sql, if cached, and marks it
// recently used.
func (c *Conn) Stmt(sql string) (Stmt, bool) { return c.stmts.get(sql) }

// SetStmt caches s as the statement prepared for sql. A statement it displaces (the least
// recently used beyond MaxStmts, or a previous one for sql with another id) is closed on the
// backend with COM_STMT_CLOSE, which has no response. Call it between commands; a failed
// write marks the connection broken.
func (c *Conn) SetStmt(sql string, s Stmt) {
	for _, old := range c.stmts.put(sql, s) {
		c.closeStmt(old.ID)
	}
}

// ForgetStmt removes sql's statement from the cache without closing it on the backend (for a
// holder that closed it itself) and returns it.
func (c *Conn) ForgetStmt(sql string) (Stmt, bool) { return c.stmts.remove(sql) }

// StmtCount returns the number of cached statements.
func (c *Conn) StmtCount() int { return c.stmts.lru.Len() }

// closeStmt sends COM_STMT_CLOSE for id.
func (c *Conn) closeStmt(id uint32) {
	if c.broken {
		return
	}
	c.cmd = binary.LittleEndian.AppendUint32(append(c.cmd[:0], mysql.COM_STMT_CLOSE), id)
	c.wc.ResetSeq()
	if c.wc.WritePacket(c.cmd) != nil || c.wc.Flush() != nil {
		c.broken = true
	}
}
