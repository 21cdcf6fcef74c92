package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/wire"
)

// Capability flags, from the MySQL protocol documentation (Capabilities Flags).
const (
	capLongPassword     uint32 = 0x00000001
	capFoundRows        uint32 = 0x00000002
	capLongFlag         uint32 = 0x00000004
	capConnectWithDB    uint32 = 0x00000008
	capNoSchema         uint32 = 0x00000010
	capCompress         uint32 = 0x00000020
	capLocalFiles       uint32 = 0x00000080
	capIgnoreSpace      uint32 = 0x00000100
	capProtocol41       uint32 = 0x00000200
	capInteractive      uint32 = 0x00000400
	capSSL              uint32 = 0x00000800
	capTransactions     uint32 = 0x00002000
	capSecureConn       uint32 = 0x00008000
	capMultiStatements  uint32 = 0x00010000
	capMultiResults     uint32 = 0x00020000
	capPSMultiResults   uint32 = 0x00040000
	capPluginAuth       uint32 = 0x00080000
	capConnectAttrs     uint32 = 0x00100000
	capPluginAuthLenenc uint32 = 0x00200000
	capSessionTrack     uint32 = 0x00800000
	capDeprecateEOF     uint32 = 0x01000000
	capQueryAttributes  uint32 = 0x08000000
)

// Command bytes, from the MySQL protocol documentation (Text and Prepared Statements).
const (
	comQuit             = 0x01
	comInitDB           = 0x02
	comQuery            = 0x03
	comFieldList        = 0x04
	comStatistics       = 0x09
	comPing             = 0x0e
	comChangeUser       = 0x11
	comStmtPrepare      = 0x16
	comStmtExecute      = 0x17
	comStmtSendLongData = 0x18
	comStmtClose        = 0x19
	comStmtReset        = 0x1a
	comSetOption        = 0x1b
	comResetConnection  = 0x1f
)

// clientCaps is what a typical MySQL 5.7+/8.0 client asks for.
const clientCaps = capLongPassword | capLongFlag | capProtocol41 | capTransactions | capSecureConn |
	capMultiStatements | capMultiResults | capPSMultiResults | capPluginAuth | capConnectAttrs |
	capPluginAuthLenenc | capDeprecateEOF

// rawClient speaks the protocol by hand, to check the server's packets byte for byte.
type rawClient struct {
	t        *testing.T
	nc       net.Conn
	w        *wire.Conn
	greeting []byte
	scramble []byte
	connID   uint32
}

// dialRaw connects and reads the greeting (or the ERR sent in its place).
func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return newRaw(t, nc)
}

// newRaw reads the greeting on nc, which is closed when the test ends.
func newRaw(t *testing.T, nc net.Conn) *rawClient {
	t.Helper()
	t.Cleanup(func() { _ = nc.Close() })
	// A fail-safe, not synchronisation: no test should take this long.
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &rawClient{t: t, nc: nc, w: wire.NewConn(nc, 0)}
	c.greeting = c.read()
	if len(c.greeting) > 0 && c.greeting[0] == 10 {
		c.parseGreeting()
	}
	return c
}

// newRawOver continues c's session over nc (after a TLS upgrade), keeping its greeting.
func newRawOver(t *testing.T, c *rawClient, nc net.Conn) *rawClient {
	return &rawClient{t: t, nc: nc, w: wire.NewConn(nc, 0), greeting: c.greeting, scramble: c.scramble, connID: c.connID}
}

// parseGreeting extracts the connection id and the 20-byte scramble from HandshakeV10.
func (c *rawClient) parseGreeting() {
	g := c.greeting
	end := bytes.IndexByte(g[1:], 0) + 1
	pos := end + 1
	c.connID = binary.LittleEndian.Uint32(g[pos:])
	pos += 4
	part1 := g[pos : pos+8]
	pos += 8 + 1 + 2 + 1 + 2 + 2
	authLen := int(g[pos])
	pos += 1 + 10
	part2 := g[pos : pos+max(13, authLen-8)-1] // without the trailing NUL
	c.scramble = append(append([]byte(nil), part1...), part2...)
}

// read returns a copy of the next packet; the test fails on an error.
func (c *rawClient) read() []byte {
	c.t.Helper()
	p, err := c.w.ReadPacket()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return bytes.Clone(p)
}

// readFrame returns the next packet with its 4-byte header, as it was on the wire.
func (c *rawClient) readFrame() []byte {
	c.t.Helper()
	seq := c.w.Seq()
	p := c.read()
	n := len(p)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, p...)
}

// write sends one packet with the current sequence number.
func (c *rawClient) write(p []byte) {
	c.t.Helper()
	if err := c.w.WritePacket(p); err != nil {
		c.t.Fatal(err)
	}
	if err := c.w.Flush(); err != nil {
		c.t.Fatal(err)
	}
}

// cmd starts a command: sequence 0, command byte, data.
func (c *rawClient) cmd(command byte, data ...byte) {
	c.t.Helper()
	c.w.ResetSeq()
	c.write(append([]byte{command}, data...))
}

// expectClosed asserts that the server closes the connection without sending anything.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	p, err := c.w.ReadPacket()
	if err == nil {
		c.t.Fatalf("read a packet % x, want the connection closed", p)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("connection still open: %v", err)
	}
}

// expectOK reads an OK packet and returns it.
func (c *rawClient) expectOK() wire.OK {
	c.t.Helper()
	p := c.read()
	if len(p) == 0 || p[0] != wire.OKHeader {
		c.t.Fatalf("got % x, want an OK packet", p)
	}
	ok, err := wire.ParseOK(p)
	if err != nil {
		c.t.Fatal(err)
	}
	return ok
}

// expectErr reads an ERR packet and checks its code and SQLSTATE.
func (c *rawClient) expectErr(code uint16, state string) string {
	c.t.Helper()
	p := c.read()
	if !wire.IsErr(p) {
		c.t.Fatalf("got % x, want an ERR packet", p)
	}
	e := wire.ParseErr(p)
	if e.Code != code || e.State != state {
		c.t.Fatalf("got ERROR %d (%s): %s; want %d (%s)", e.Code, e.State, e.Message, code, state)
	}
	return e.Message
}

// ping checks that the connection still answers COM_PING with OK.
func (c *rawClient) ping() {
	c.t.Helper()
	c.cmd(comPing)
	c.expectOK()
}

// handshakeResponse builds a HandshakeResponse41.
type handshakeResponse41 struct {
	caps      uint32
	collation byte
	user      string
	auth      []byte
	db        string
	plugin    string
	attrs     [][2]string
}

func (r handshakeResponse41) encode() []byte {
	b := binary.LittleEndian.AppendUint32(nil, r.caps)
	b = binary.LittleEndian.AppendUint32(b, 1<<24) // max packet size
	b = append(b, r.collation)
	b = append(b, make([]byte, 23)...)
	b = append(b, r.user...)
	b = append(b, 0)
	switch {
	case r.caps&capPluginAuthLenenc != 0:
		b = wire.AppendLenencString(b, string(r.auth))
	case r.caps&capSecureConn != 0:
		b = append(b, byte(len(r.auth)))
		b = append(b, r.auth...)
	default:
		b = append(append(b, r.auth...), 0)
	}
	if r.caps&capConnectWithDB != 0 {
		b = append(append(b, r.db...), 0)
	}
	if r.caps&capPluginAuth != 0 {
		b = append(append(b, r.plugin...), 0)
	}
	if r.caps&capConnectAttrs != 0 {
		var kv []byte
		for _, a := range r.attrs {
			kv = wire.AppendLenencString(kv, a[0])
			kv = wire.AppendLenencString(kv, a[1])
		}
		b = wire.AppendLenencString(b, string(kv))
	}
	return b
}

// nativeResponse is the standard response for user with mysql_native_password, computed
// with go-mysql's reference implementation.
func (c *rawClient) nativeResponse(user, pw string) handshakeResponse41 {
	return handshakeResponse41{
		caps: clientCaps, collation: 45, user: user,
		auth: mysql.CalcNativePassword(c.scramble, []byte(pw)), plugin: PluginNative,
	}
}

// login sends r as the handshake response (sequence 1).
func (c *rawClient) send(r handshakeResponse41) {
	c.t.Helper()
	c.w.SetSeq(1)
	c.write(r.encode())
}

// loginNative logs in as the native user and expects OK.
func loginNative(t *testing.T, addr string) *rawClient {
	t.Helper()
	c := dialRaw(t, addr)
	c.send(c.nativeResponse(nativeUser, password))
	c.expectOK()
	return c
}
