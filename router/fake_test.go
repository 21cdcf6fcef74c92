package router

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// fakeBackend is a Backend whose connections are in-memory fake MySQL servers. Every
// statement any of them receives is logged as "SHARD#ID: SQL" (COM_INIT_DB as "USE db"),
// so tests assert the exact SQL each shard got. Connections are pooled per shard like the
// real pool: released ones are reused, broken ones dropped.
type fakeBackend struct {
	mu     sync.Mutex
	log    []string
	idle   map[string][]*fakeConn
	nextID uint32
	// values answers SELECT @@session.NAME (default: the utf8mb4 baseline, autocommit 1).
	values map[string]string
	// userVars answers SELECT @`NAME` (default: 1, as any SELECT).
	userVars map[string]string
	// lastInsertID is announced in the OK packet of every INSERT; unless explicitID, the
	// connection generated it: its SELECT LAST_INSERT_ID() answers it from then on.
	lastInsertID uint64
	explicitID   bool
	kills        []string
	nextStmt     uint32
	// failShards answer every query with ERROR 1050 on these shards.
	failShards map[string]bool
	// failSelects answer SELECT ... FROM with ERROR 1054 on these shards.
	failSelects map[string]bool
	// deadlockShards answer a statement naming table orders with ERROR 1213 on these shards.
	deadlockShards map[string]bool
	// doubleReleases counts Release calls for a connection not handed out: the pool would
	// give it to another statement while its holder still uses it.
	doubleReleases int
	// lostCommits: a COMMIT run with Exec on these shards is received and committed, but
	// its connection dies before the answer (the outcome the client cannot know).
	lostCommits map[string]bool
	// lose, when set and true for a command, makes the connection die without answering it
	// (the server was killed after the command was sent).
	lose func(shard string, cmd []byte) bool
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{idle: map[string][]*fakeConn{}, values: map[string]string{
		"character_set_client": "utf8mb4", "character_set_connection": "utf8mb4",
		"character_set_results": "utf8mb4", "collation_connection": "utf8mb4_general_ci",
		"autocommit": "1",
	}}
}

func (b *fakeBackend) Acquire(_ context.Context, shard *rules.Shard, _ rules.Role) (Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if idle := b.idle[shard.Name]; len(idle) > 0 {
		c := idle[len(idle)-1]
		b.idle[shard.Name] = idle[:len(idle)-1]
		c.inUse = true
		return c, nil
	}
	if strings.HasPrefix(shard.Name, "down") {
		return nil, sqlerr.New(sqlerr.ErCantConnect, "Can't connect to backend of shard %s", shard.Name)
	}
	b.nextID++
	c := &fakeConn{be: b, shard: shard.Name, id: b.nextID, inUse: true}
	c.st.SetStatus(wire.StatusAutocommit)
	c.w = wire.NewConn(&fakeNet{c: c}, 0)
	return c, nil
}

func (b *fakeBackend) Release(c Conn) {
	fc := c.(*fakeConn)
	b.mu.Lock()
	defer b.mu.Unlock()
	fc.released++
	if !fc.inUse {
		b.doubleReleases++
		return
	}
	fc.inUse = false
	if fc.st.Broken() {
		return
	}
	if fc.st.Dirty() { // the pool resets a dirty connection: its session state is gone
		fc.st.Reset()
		fc.st.SetDB("")
		fc.st.SetStatus(wire.StatusAutocommit)
		fc.inTrans, fc.manual, fc.sps = false, false, nil
		fc.resets++
	}
	b.idle[fc.shard] = append(b.idle[fc.shard], fc)
}

// KillQuery records "SHARD#ID" in the backend's kills (the server the connection runs on)
// and runs the connection's onKill hook.
func (c *fakeConn) KillQuery(context.Context) error {
	c.be.mu.Lock()
	c.be.kills = append(c.be.kills, fmt.Sprintf("%s#%d", c.shard, c.id))
	c.be.mu.Unlock()
	if c.onKill != nil {
		c.onKill()
	}
	return nil
}

// takeLog returns the statements logged since the last call.
func (b *fakeBackend) takeLog() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.log
	b.log = nil
	return l
}

// idleCount is the number of pooled connections of shard.
func (b *fakeBackend) idleCount(shard string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.idle[shard])
}

// fakeConn is one backend connection (router.Conn) and the server state behind it.
type fakeConn struct {
	be       *fakeBackend
	shard    string
	id       uint32
	w        *wire.Conn
	st       wire.ConnState // the connection's bookkeeping; its db is the server's too
	inTrans  bool
	manual   bool     // autocommit = 0: a statement on a table opens a transaction
	sps      []string // savepoints of the open transaction
	lastID   uint64   // LAST_INSERT_ID(): the last id an INSERT on it generated
	released int
	inUse    bool // handed out by Acquire and not yet released
	resets   int
	onKill   func() // run by KillQuery, if set
}

func (c *fakeConn) Wire() *wire.Conn       { return c.w }
func (c *fakeConn) ID() uint32             { return c.id }
func (c *fakeConn) Server() string         { return c.shard }
func (c *fakeConn) State() *wire.ConnState { return &c.st }

// Exec runs a statement outside the packet relay, as the pool's Exec does.
func (c *fakeConn) Exec(_ context.Context, query string) (wire.OK, error) {
	answer := c.query(query)
	if c.be.lostCommits[c.shard] && strings.EqualFold(query, "COMMIT") {
		c.st.MarkBroken()
		return wire.OK{}, fmt.Errorf("%w: read: connection reset by peer", engine.ErrBackendIO)
	}
	p := answer[0]
	if wire.IsErr(p) {
		return wire.OK{}, wire.ParseErr(p)
	}
	return wire.ParseOK(p)
}

func (c *fakeConn) record(s string) {
	c.be.mu.Lock()
	defer c.be.mu.Unlock()
	c.be.log = append(c.be.log, fmt.Sprintf("%s#%d: %s", c.shard, c.id, s))
}

// query logs sql and returns the server's answer packets.
func (c *fakeConn) query(sql string) [][]byte {
	c.record(sql)
	upper := strings.ToUpper(strings.TrimSpace(sql))
	ok := func(o wire.OK) [][]byte {
		o.Status = c.serverStatus()
		return [][]byte{wire.AppendOK(nil, o)}
	}
	c.be.mu.Lock()
	failHere, failSelect := c.be.failShards[c.shard], c.be.failSelects[c.shard]
	deadlock := c.be.deadlockShards[c.shard] && strings.Contains(upper, "ORDERS")
	c.be.mu.Unlock()
	switch {
	case failHere:
		return [][]byte{wire.AppendErr(nil, sqlerr.New(1050, "Table 'x' already exists"))}
	case failSelect && strings.HasPrefix(upper, "SELECT") && strings.Contains(upper, " FROM "):
		return [][]byte{wire.AppendErr(nil, sqlerr.New(1054, "Unknown column 'nosuch' in 'SELECT'"))}
	case deadlock || strings.Contains(upper, "DEADLOCK"):
		c.inTrans, c.sps = false, nil
		return [][]byte{wire.AppendErr(nil, sqlerr.New(1213, "Deadlock found when trying to get lock; try restarting transaction"))}
	case strings.Contains(upper, "PANIC"): // a defect, or backend bytes no check caught
		panic("fake backend: PANIC in " + sql)
	case strings.Contains(upper, "DUPKEY"): // fails once its table is open: begins a transaction under autocommit = 0
		if c.manual {
			c.inTrans = true
		}
		return [][]byte{wire.AppendErr(nil, sqlerr.New(1062, "Duplicate entry '1' for key 'PRIMARY'"))}
	case strings.Contains(upper, "FAIL"):
		return [][]byte{wire.AppendErr(nil, sqlerr.New(1146, "Table 'fail' doesn't exist"))}
	case upper == "SELECT @@IN_TRANSACTION":
		v := "0"
		if c.inTrans {
			v = "1"
		}
		var k engine.Collector
		_ = wire.WriteTextResult(&k, []wire.Column{{Name: "@@in_transaction"}}, [][]*string{{&v}}, c.serverStatus())
		return k.Pkts
	case upper == "SELECT LAST_INSERT_ID()":
		v := strconv.FormatUint(c.lastID, 10)
		var k engine.Collector
		_ = wire.WriteTextResult(&k, []wire.Column{{Name: "LAST_INSERT_ID()"}}, [][]*string{{&v}}, c.serverStatus())
		return k.Pkts
	case strings.HasPrefix(upper, "SELECT @@SESSION."):
		var cols []wire.Column
		var row []*string
		for _, f := range strings.Split(sql[len("SELECT "):], ", ") {
			name := strings.TrimPrefix(f, "@@session.")
			cols = append(cols, wire.Column{Name: f})
			c.be.mu.Lock()
			v, found := c.be.values[name]
			c.be.mu.Unlock()
			if found {
				row = append(row, &v)
			} else {
				row = append(row, nil)
			}
		}
		var k engine.Collector
		_ = wire.WriteTextResult(&k, cols, [][]*string{row}, wire.StatusAutocommit)
		return k.Pkts
	case c.userVar(sql) != nil:
		var k engine.Collector
		_ = wire.WriteTextResult(&k, []wire.Column{{Name: sql[len("SELECT "):]}}, [][]*string{{c.userVar(sql)}}, c.serverStatus())
		return k.Pkts
	case strings.HasPrefix(upper, "SELECT"), strings.HasPrefix(upper, "(SELECT"): // a shard's UNION ALL of its slots' tables too
		one := "1"
		var k engine.Collector
		c.touch(upper)
		_ = wire.WriteTextResult(&k, []wire.Column{{Name: "1"}}, [][]*string{{&one}}, c.serverStatus())
		return k.Pkts
	case strings.HasPrefix(upper, "SET") && strings.Contains(upper, "AUTOCOMMIT"):
		manual := strings.Contains(upper, "AUTOCOMMIT = 0") || strings.Contains(upper, "AUTOCOMMIT=0")
		if c.manual && !manual { // autocommit back on commits
			c.inTrans, c.sps = false, nil
		}
		c.manual = manual
	case strings.HasPrefix(upper, "BEGIN"), strings.HasPrefix(upper, "START TRANSACTION"):
		c.inTrans, c.sps = true, nil
	case strings.HasPrefix(upper, "SAVEPOINT"), strings.HasPrefix(upper, "ROLLBACK TO"), strings.HasPrefix(upper, "RELEASE SAVEPOINT"):
		if err := c.savepoint(upper); err != nil {
			return [][]byte{wire.AppendErr(nil, err)}
		}
	case strings.HasPrefix(upper, "COMMIT"), strings.HasPrefix(upper, "ROLLBACK"):
		c.inTrans, c.sps = strings.Contains(upper, "AND CHAIN") && !strings.Contains(upper, "NO CHAIN"), nil
	case strings.HasPrefix(upper, "INSERT"):
		c.touch(upper)
		c.be.mu.Lock()
		id := c.be.lastInsertID
		if !c.be.explicitID && id != 0 {
			c.lastID = id
		}
		c.be.mu.Unlock()
		return ok(wire.OK{AffectedRows: 1, LastInsertID: id})
	}
	c.touch(upper)
	return ok(wire.OK{})
}

// userVar returns the value of userVars that sql (SELECT @`name`) reads, nil for none.
func (c *fakeConn) userVar(sql string) *string {
	name, ok := strings.CutPrefix(sql, "SELECT @`")
	if !ok || !strings.HasSuffix(name, "`") {
		return nil
	}
	c.be.mu.Lock()
	defer c.be.mu.Unlock()
	if v, ok := c.be.userVars[strings.TrimSuffix(name, "`")]; ok {
		return &v
	}
	return nil
}

// touch opens a transaction under autocommit = 0 when a statement reads or writes a table.
func (c *fakeConn) touch(upper string) {
	if c.manual && (strings.Contains(upper, " FROM ") || strings.HasPrefix(upper, "INSERT") || strings.HasPrefix(upper, "UPDATE") || strings.HasPrefix(upper, "DELETE")) {
		c.inTrans = true
	}
}

// savepoint runs SAVEPOINT, ROLLBACK TO [SAVEPOINT] and RELEASE SAVEPOINT as MariaDB does.
func (c *fakeConn) savepoint(upper string) *sqlerr.Error {
	f := strings.Fields(upper)
	name := strings.Trim(f[len(f)-1], "`")
	i := slices.Index(c.sps, name)
	switch {
	case f[0] == "SAVEPOINT":
		if !c.inTrans && !c.manual {
			return nil
		}
		if i >= 0 {
			c.sps = slices.Delete(c.sps, i, i+1)
		}
		c.sps = append(c.sps, name)
	case i < 0:
		return sqlerr.New(1305, "SAVEPOINT %s does not exist", strings.ToLower(name))
	case f[0] == "RELEASE":
		c.sps = c.sps[:i]
	default:
		c.sps = c.sps[:i+1]
	}
	return nil
}

// serverStatus is the status flags the server puts in its OK and EOF packets.
func (c *fakeConn) serverStatus() uint16 {
	var st uint16
	if !c.manual {
		st |= wire.StatusAutocommit
	}
	if c.inTrans {
		st |= wire.StatusInTrans
	}
	return st
}

// command answers one command packet.
func (c *fakeConn) command(p []byte) [][]byte {
	if c.be.lose != nil && c.be.lose(c.shard, p) {
		c.record("LOST " + string(p[1:]))
		return nil
	}
	switch p[0] {
	case engine.ComQuery:
		return c.query(string(p[1:]))
	case engine.ComInitDB:
		c.record("USE " + string(p[1:]))
		return [][]byte{wire.AppendOK(nil, wire.OK{Status: c.serverStatus()})}
	case engine.ComFieldList:
		table, _, _ := strings.Cut(string(p[1:]), "\x00")
		c.record("FIELD_LIST " + table)
		return [][]byte{wire.AppendColumnDef(nil, wire.Column{Table: table, Name: "id"}), wire.AppendEOF(nil, 0, c.serverStatus())}
	case engine.ComStmtPrepare:
		sql := string(p[1:])
		c.record("PREPARE " + sql)
		if strings.Contains(strings.ToUpper(sql), "FAIL") {
			return [][]byte{wire.AppendErr(nil, sqlerr.New(1146, "Table 'fail' doesn't exist"))}
		}
		c.be.mu.Lock()
		c.be.nextStmt++
		id := c.be.nextStmt
		c.be.mu.Unlock()
		n := strings.Count(sql, "?")
		ok := []byte{wire.OKHeader, byte(id), byte(id >> 8), byte(id >> 16), byte(id >> 24), 1, 0, byte(n), byte(n >> 8), 0, 0, 0}
		out := [][]byte{ok}
		for range n {
			out = append(out, wire.AppendColumnDef(nil, wire.Column{Name: "?"}))
		}
		if n > 0 {
			out = append(out, wire.AppendEOF(nil, 0, wire.StatusAutocommit))
		}
		return append(out, wire.AppendColumnDef(nil, wire.Column{Name: "c"}), wire.AppendEOF(nil, 0, wire.StatusAutocommit))
	case engine.ComStmtExecute:
		id := uint32(p[1]) | uint32(p[2])<<8 | uint32(p[3])<<16 | uint32(p[4])<<24
		c.record(fmt.Sprintf("EXECUTE %d % x", id, p[10:]))
		return [][]byte{wire.AppendOK(nil, wire.OK{AffectedRows: 1, Status: wire.StatusAutocommit})}
	}
	c.record(fmt.Sprintf("command %#x", p[0]))
	return [][]byte{wire.AppendErr(nil, sqlerr.New(sqlerr.ErUnknownCom, "Unknown command"))}
}

// fakeNet is the connection's socket: each complete command packet written to it is
// answered at once into the read side, with the sequence numbers that follow the command's.
type fakeNet struct {
	c   *fakeConn
	in  []byte
	out bytes.Buffer
}

func (n *fakeNet) Write(b []byte) (int, error) {
	n.in = append(n.in, b...)
	for len(n.in) >= 4 {
		size := int(n.in[0]) | int(n.in[1])<<8 | int(n.in[2])<<16
		if len(n.in) < 4+size {
			break
		}
		seq := n.in[3]
		answer := n.c.command(bytes.Clone(n.in[4 : 4+size]))
		n.in = n.in[4+size:]
		for _, p := range answer {
			seq++
			n.out.Write([]byte{byte(len(p)), byte(len(p) >> 8), byte(len(p) >> 16), seq})
			n.out.Write(p)
		}
	}
	return len(b), nil
}

func (n *fakeNet) Read(b []byte) (int, error) {
	if n.out.Len() == 0 {
		return 0, io.EOF // nothing more will come: the test's server has said everything
	}
	return n.out.Read(b)
}

func (n *fakeNet) Close() error                     { return nil }
func (n *fakeNet) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (n *fakeNet) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (n *fakeNet) SetDeadline(time.Time) error      { return nil }
func (n *fakeNet) SetReadDeadline(time.Time) error  { return nil }
func (n *fakeNet) SetWriteDeadline(time.Time) error { return nil }

// clientRecorder collects the packets a session writes to its client.
type clientRecorder struct{ engine.Collector }

// oks returns the OK packets written, parsed.
func (r *clientRecorder) oks() []wire.OK {
	var out []wire.OK
	for _, p := range r.Pkts {
		if len(p) > 0 && p[0] == wire.OKHeader {
			if ok, err := wire.ParseOK(p); err == nil {
				out = append(out, ok)
			}
		}
	}
	return out
}

func (r *clientRecorder) reset() { r.Pkts = nil }

// sqlCode returns the MySQL error code of err, or 0.
func sqlCode(err error) uint16 {
	if e, ok := sqlerr.As(err); ok {
		return e.Code
	}
	return 0
}
