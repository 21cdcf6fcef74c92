package wire

import "container/list"

// MaxStmts bounds a connection's prepared statement cache: PutStmt drops the least recently
// used statement when a new one would exceed it.
const MaxStmts = 256

// Stmt is a statement prepared on one backend connection: its id there and the counts of
// parameters and result columns the backend announced.
type Stmt struct {
	ID              uint32
	Params, Columns int
}

// ConnState is what the client side of one backend connection knows of the server session
// behind it: whether the protocol state is still known (Broken) and the session state still
// the one recorded (Dirty), the last status flags seen, the default database, the session
// variables applied and the statements prepared there.
//
// The connection's owner (pool) creates it with the connection and clears it when the
// session is reset; between Acquire and Release it belongs to the connection's holder,
// which records here what it changed. The zero value is a fresh session: no variables, no
// default database, no statements. Not safe for concurrent use.
type ConnState struct {
	status        uint16
	broken, dirty bool
	db            string
	vars          map[string]string
	stmts         stmtCache
}

// MarkBroken records that the protocol state is unknown (an I/O error, a result abandoned
// midway): the connection must never be reused.
func (s *ConnState) MarkBroken() { s.broken = true }

// Broken reports whether the connection was marked broken.
func (s *ConnState) Broken() bool { return s.broken }

// MarkDirty records that the session state is unknown (user variables, temporary tables,
// locks, a half-applied SET, ...): the connection must be reset before it is reused.
func (s *ConnState) MarkDirty() { s.dirty = true }

// Dirty reports whether the connection was marked dirty.
func (s *ConnState) Dirty() bool { return s.dirty }

// Status returns the last server status flags seen from the backend.
func (s *ConnState) Status() uint16 { return s.status }

// SetStatus records the status flags of the backend's last OK or EOF packet.
func (s *ConnState) SetStatus(st uint16) { s.status = st }

// InTransaction reports whether the last status seen says a transaction is open.
func (s *ConnState) InTransaction() bool { return s.status&StatusInTrans != 0 }

// Vars returns the system variables applied on the connection (name → SQL literal); empty
// means the server's defaults. The holder must not modify the map in place: SetVars
// replaces it.
func (s *ConnState) Vars() map[string]string { return s.vars }

// SetVars replaces the recorded variables with v, which the state takes ownership of.
func (s *ConnState) SetVars(v map[string]string) { s.vars = v }

// DB returns the connection's default database ("" for none).
func (s *ConnState) DB() string { return s.db }

// SetDB records the connection's default database after the holder changed it.
func (s *ConnState) SetDB(db string) { s.db = db }

// Stmt returns the statement prepared on the connection under key, if it is still cached,
// and marks it recently used.
func (s *ConnState) Stmt(key string) (Stmt, bool) { return s.stmts.get(key) }

// PutStmt caches st under key and returns the statements no longer cached, which the caller
// closes on the backend (COM_STMT_CLOSE): a previous one under key with another id, and the
// least recently used beyond MaxStmts.
func (s *ConnState) PutStmt(key string, st Stmt) (dropped []Stmt) { return s.stmts.put(key, st) }

// StmtCount returns the number of cached statements.
func (s *ConnState) StmtCount() int { return s.stmts.lru.Len() }

// Reset records that the server session was reset (COM_RESET_CONNECTION): variables and
// prepared statements are gone and the session state is known again. The default database
// and the status are kept: MariaDB keeps the database across a reset, and the reset's OK
// reports the status.
func (s *ConnState) Reset() {
	s.vars = nil
	s.stmts.clear()
	s.dirty = false
}

// stmtCache maps keys to prepared statements, least recently used last. The zero value is
// empty and ready to use.
type stmtCache struct {
	m   map[string]*list.Element // values of lru: *stmtEntry
	lru list.List
}

type stmtEntry struct {
	key  string
	stmt Stmt
}

func (sc *stmtCache) get(key string) (Stmt, bool) {
	e, ok := sc.m[key]
	if !ok {
		return Stmt{}, false
	}
	sc.lru.MoveToFront(e)
	return e.Value.(*stmtEntry).stmt, true
}

func (sc *stmtCache) put(key string, s Stmt) (dropped []Stmt) {
	if sc.m == nil {
		sc.m = make(map[string]*list.Element)
	}
	if e, ok := sc.m[key]; ok {
		ent := e.Value.(*stmtEntry)
		if ent.stmt.ID != s.ID {
			dropped = append(dropped, ent.stmt)
		}
		ent.stmt = s
		sc.lru.MoveToFront(e)
		return dropped
	}
	sc.m[key] = sc.lru.PushFront(&stmtEntry{key: key, stmt: s})
	for sc.lru.Len() > MaxStmts {
		ent := sc.lru.Remove(sc.lru.Back()).(*stmtEntry)
		delete(sc.m, ent.key)
		dropped = append(dropped, ent.stmt)
	}
	return dropped
}

func (sc *stmtCache) clear() {
	clear(sc.m)
	sc.lru.Init()
}
