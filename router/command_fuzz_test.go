package router

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/protocol"
	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// The command-loop fuzz target runs the real protocol server and the router together over
// the recording fake backend (fake_test.go): a client logs in properly, then sends the
// fuzzer's command packets.

// scriptConn is an in-memory client connection: when the server reads and nothing is
// pending, next gives the client's next bytes from everything the server wrote so far (nil:
// end of stream). done is closed when the server closes the connection.
type scriptConn struct {
	mu     sync.Mutex
	in     []byte
	out    bytes.Buffer
	next   func(out []byte) []byte
	closed bool
	once   sync.Once
	done   chan struct{}
}

func (c *scriptConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if len(c.in) == 0 && c.next != nil {
		c.in = c.next(c.out.Bytes())
	}
	if len(c.in) == 0 {
		c.next = nil
		return 0, io.EOF
	}
	n := copy(b, c.in)
	c.in = c.in[n:]
	return n, nil
}

func (c *scriptConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.out.Write(b)
}

func (c *scriptConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *scriptConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3307}
}
func (c *scriptConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// connListener hands out the connections sent on its channel.
type connListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *connListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3307} }

// fuzzHandler adapts the router to protocol.Handler, as cmd/shardproxy does.
type fuzzHandler struct{ r *Router }

func (h fuzzHandler) NewSession(ctx context.Context, info protocol.ConnInfo) (protocol.Session, error) {
	s, err := h.r.NewSession(ctx, SessionInfo{ConnID: info.ID, User: info.User, Collation: info.Collation})
	if err != nil {
		return nil, err
	}
	return fuzzSession{s}, nil
}

type fuzzSession struct{ *Session }

func (s fuzzSession) Prepare(ctx context.Context, sql string) (protocol.Prepared, error) {
	return s.Session.Prepare(ctx, sql)
}

func (s fuzzSession) Execute(ctx context.Context, p protocol.Prepared, params []protocol.Param, _ bool, w protocol.ResultWriter) error {
	return s.Session.Execute(ctx, p.(*Stmt), params, w)
}

func (s fuzzSession) CloseStmt(p protocol.Prepared) { s.Session.CloseStmt(p.(*Stmt)) }

type fuzzUsers struct{ snap *rules.Snapshot }

func (u fuzzUsers) LookupUser(name string) (protocol.Credential, bool) {
	usr, ok := u.snap.User(name)
	if !ok {
		return protocol.Credential{}, false
	}
	return protocol.Credential{Hash: usr.PasswordHash}, true
}

// panicCounter counts a server's "connection panicked" log records and keeps the last.
type panicCounter struct {
	n    atomic.Int64
	last atomic.Value // string
}

func (h *panicCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panicked") {
		var b strings.Builder
		r.Attrs(func(a slog.Attr) bool {
			b.WriteString(a.Key + ": " + a.Value.String() + "\n")
			return true
		})
		h.last.Store(b.String())
		h.n.Add(1)
	}
	return nil
}
func (h *panicCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *panicCounter) WithGroup(string) slog.Handler      { return h }

// fuzzPassword is the password of user app in the golden configurations.
const fuzzPassword = "123456"

// loginThen is the client's script: a mysql_native_password login as app on database shop
// (answering the greeting's scramble), then each of cmds as one command packet, then end
// of stream.
func loginThen(cmds [][]byte) func(out []byte) []byte {
	step := 0
	return func(out []byte) []byte {
		step++
		if step == 1 {
			s := scrambleOf(out)
			if s == nil {
				return nil
			}
			caps := mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_LONG_FLAG | mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_TRANSACTIONS |
				mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS |
				mysql.CLIENT_PS_MULTI_RESULTS | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_WITH_DB
			b := binary.LittleEndian.AppendUint32(nil, uint32(caps))
			b = binary.LittleEndian.AppendUint32(b, 1<<24)
			b = append(b, 45)
			b = append(b, make([]byte, 23)...)
			b = append(b, "app\x00"...)
			auth := mysql.CalcNativePassword(s, []byte(fuzzPassword))
			b = append(append(b, byte(len(auth))), auth...)
			b = append(b, "shop\x00mysql_native_password\x00"...)
			return frame(1, b)
		}
		if step-2 >= len(cmds) {
			return nil
		}
		return frame(0, cmds[step-2])
	}
}

func frame(seq byte, p []byte) []byte {
	n := len(p)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, p...)
}

// scrambleOf reads the 20-byte scramble from the greeting at the start of out.
func scrambleOf(out []byte) []byte {
	if len(out) < 5 || out[4] != 10 {
		return nil
	}
	g := out[4:]
	end := bytes.IndexByte(g[1:], 0)
	if end < 0 || len(g) < end+2+4+27+12 {
		return nil
	}
	pos := end + 2 + 4
	s := append([]byte(nil), g[pos:pos+8]...)
	pos += 8 + 19 // scramble part 1, filler, capabilities, collation, status, scramble length, reserved
	return append(s, g[pos:pos+12]...)
}

// splitCommands decodes the fuzz input into at most 32 command payloads: each is a length
// byte (0xff: a 2-byte length follows) and that many bytes.
func splitCommands(data []byte) [][]byte {
	var cmds [][]byte
	for len(data) > 0 && len(cmds) < 32 {
		n := int(data[0])
		data = data[1:]
		if n == 0xff && len(data) >= 2 {
			n, data = int(binary.LittleEndian.Uint16(data)), data[2:]
		}
		n = min(n, len(data))
		cmds = append(cmds, data[:n])
		data = data[n:]
	}
	return cmds
}

// joinCommands is splitCommands' inverse, for seeds.
func joinCommands(cmds ...[]byte) []byte {
	var b []byte
	for _, c := range cmds {
		if len(c) >= 0xff {
			b = binary.LittleEndian.AppendUint16(append(b, 0xff), uint16(len(c)))
		} else {
			b = append(b, byte(len(c)))
		}
		b = append(b, c...)
	}
	return b
}

func cmd(c byte, s string) []byte { return append([]byte{c}, s...) }

// cmdServer is the protocol server in front of a router over the fake backend, serving
// scripted connections.
type cmdServer struct {
	ln   *connListener
	be   *fakeBackend
	logs *panicCounter
}

func startCommandServer(tb testing.TB) *cmdServer {
	tb.Helper()
	snap, err := rules.Build(plantest.ShardedConfig())
	if err != nil {
		tb.Fatal(err)
	}
	cs := &cmdServer{be: newFakeBackend(), logs: &panicCounter{},
		ln: &connListener{conns: make(chan net.Conn), closed: make(chan struct{})}}
	r := New(Options{Rules: rules.NewStore(snap), Backend: cs.be})
	srv, err := protocol.NewServer(protocol.Options{Logger: slog.New(cs.logs), MaxAllowedPacket: 1 << 20}, fuzzUsers{snap}, fuzzHandler{r})
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(cs.ln) }()
	tb.Cleanup(func() {
		_ = srv.Close()
		_ = cs.ln.Close()
		if err := <-served; !errors.Is(err, protocol.ErrServerClosed) {
			tb.Errorf("Serve: %v", err)
		}
	})
	return cs
}

// run serves one connection that logs in and sends the commands encoded in data; it
// returns what the server wrote, and fails the test if the connection panicked.
func (cs *cmdServer) run(t *testing.T, data []byte) []byte {
	t.Helper()
	before := cs.logs.n.Load()
	sc := &scriptConn{next: loginThen(splitCommands(data)), done: make(chan struct{})}
	select {
	case cs.ln.conns <- sc:
	case <-time.After(10 * time.Second):
		t.Fatal("the server does not accept")
	}
	<-sc.done
	if cs.logs.n.Load() != before {
		t.Fatalf("the connection panicked on % x:\n%s", data, cs.logs.last.Load())
	}
	return sc.out.Bytes()
}

var execOne = []byte{engine.ComStmtExecute, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, mysql.MYSQL_TYPE_LONGLONG, 0, 7, 0, 0, 0, 0, 0, 0, 0}

// FuzzCommands logs in to the real protocol server in front of the router over the
// recording fake backend, then sends arbitrary command packets. The proxy must never
// panic, must answer in well-framed packets with server-range error codes, and must end
// the session when the client's stream ends.
func FuzzCommands(f *testing.F) {
	cs := startCommandServer(f)
	f.Add(joinCommands(cmd(engine.ComQuery, "SELECT * FROM orders WHERE user_id = 1"), cmd(engine.ComQuery, "SELECT COUNT(*) FROM orders")))
	f.Add(joinCommands(cmd(engine.ComStmtPrepare, "SELECT * FROM orders WHERE user_id = ?"), execOne, execOne, cmd(engine.ComStmtClose, "\x01\x00\x00\x00")))
	f.Add(joinCommands(cmd(engine.ComQuery, "BEGIN"), cmd(engine.ComQuery, "INSERT INTO orders (user_id, id) VALUES (1, 1), (2, 2)"), cmd(engine.ComQuery, "COMMIT")))
	f.Add(joinCommands(cmd(engine.ComInitDB, "shop"), cmd(engine.ComFieldList, "orders\x00"), cmd(0x09, ""), cmd(0x0e, ""), cmd(0x1f, "")))
	f.Add(joinCommands(cmd(engine.ComQuery, "SET @a = 1; SELECT @a; PREPARE s FROM 'SELECT 1'; EXECUTE s"), cmd(0x1b, "\x01\x00")))
	f.Add(joinCommands(cmd(engine.ComStmtPrepare, "INSERT INTO orders (user_id, id) VALUES (?, ?)"), cmd(0x18, "\x01\x00\x00\x00\x00\x00abc"), execOne, cmd(0x1a, "\x01\x00\x00\x00")))
	f.Add(joinCommands(cmd(engine.ComQuery, "SELECT /*+ MAX_EXECUTION_TIME(1) */ SLEEP(1)"), cmd(engine.ComQuery, "KILL QUERY 1"), cmd(0x01, "")))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkOutput(t, cs.run(t, data))
	})
}

// TestCommandScript checks that FuzzCommands' scripted client logs in and that its
// commands reach the backend: a prepared statement executed by shard key goes to its shard.
func TestCommandScript(t *testing.T) {
	cs := startCommandServer(t)
	out := cs.run(t, joinCommands(cmd(engine.ComStmtPrepare, "SELECT * FROM orders WHERE user_id = ?"), execOne, cmd(engine.ComQuery, "SELECT * FROM orders WHERE user_id = 1")))
	checkOutput(t, out)
	log := strings.Join(cs.be.takeLog(), "\n")
	for _, want := range []string{"EXECUTE", "SELECT * FROM orders WHERE user_id = 1"} {
		if !strings.Contains(log, want) {
			t.Errorf("backend log lacks %q:\n%s", want, log)
		}
	}
}

// checkOutput: every packet the server wrote is well framed, the login succeeded, and
// every ERR packet carries a server-range code.
func checkOutput(t *testing.T, out []byte) {
	t.Helper()
	var pkts [][]byte
	for len(out) > 0 {
		if len(out) < 4 {
			t.Fatalf("truncated packet header: % x", out)
		}
		n := int(out[0]) | int(out[1])<<8 | int(out[2])<<16
		if len(out) < 4+n {
			t.Fatalf("packet of %d bytes announcing %d", len(out)-4, n)
		}
		pkts = append(pkts, out[4:4+n])
		out = out[4+n:]
	}
	if len(pkts) < 2 || len(pkts[1]) == 0 || pkts[1][0] != wire.OKHeader {
		t.Fatalf("the login did not succeed: %q", pkts)
	}
	for _, p := range pkts {
		if !wire.IsErr(p) {
			continue
		}
		e := wire.ParseErr(p)
		if e == nil || e.Code < 1000 || (e.Code >= 2000 && e.Code < 3000) {
			t.Fatalf("ERR packet with a code outside the server range: %q", p)
		}
	}
}
