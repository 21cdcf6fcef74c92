package protocol

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// frameOf prefixes payload with a packet header carrying seq.
func frameOf(seq byte, payload []byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

// wantCaps is the exact capability set the greeting offers without TLS.
const wantCaps = capLongPassword | capFoundRows | capLongFlag | capConnectWithDB | capNoSchema | capIgnoreSpace | capLocalFiles |
	capProtocol41 | capInteractive | capTransactions | capSecureConn | capMultiStatements |
	capMultiResults | capPSMultiResults | capPluginAuth | capConnectAttrs | capPluginAuthLenenc

// TestGreeting checks Protocol::HandshakeV10 byte for byte: protocol version 10, the server
// version, the connection id, auth-plugin-data split 8 + filler + 12 + NUL, capabilities
// split low/high around charset (45, utf8mb4_general_ci) and status (autocommit),
// auth-plugin-data length 21, 10 reserved bytes, and the plugin name.
func TestGreeting(t *testing.T) {
	ts := startServer(t, Options{ServerVersion: "8.0.36-test"})
	c := dialRaw(t, ts.addr)
	if len(c.scramble) != 20 {
		t.Fatalf("scramble is %d bytes, want 20", len(c.scramble))
	}
	for _, b := range c.scramble {
		if b == 0 {
			t.Fatalf("scramble % x contains a NUL", c.scramble)
		}
	}
	if c.connID == 0 {
		t.Error("connection id is 0")
	}
	var want []byte
	want = append(want, 10)
	want = append(want, "8.0.36-test\x00"...)
	want = binary.LittleEndian.AppendUint32(want, c.connID)
	want = append(want, c.scramble[:8]...)
	want = append(want, 0)
	want = binary.LittleEndian.AppendUint16(want, uint16(wantCaps&0xffff))
	want = append(want, 45)
	want = append(want, 0x02, 0x00)
	want = binary.LittleEndian.AppendUint16(want, uint16(wantCaps>>16))
	want = append(want, 21)
	want = append(want, make([]byte, 10)...)
	want = append(want, c.scramble[8:]...)
	want = append(want, 0)
	want = append(want, "mysql_native_password\x00"...)
	if !bytes.Equal(c.greeting, want) {
		t.Fatalf("greeting\n% x\nwant\n% x", c.greeting, want)
	}
	for name, f := range map[string]uint32{"CLIENT_DEPRECATE_EOF": capDeprecateEOF, "CLIENT_SESSION_TRACK": capSessionTrack,
		"CLIENT_COMPRESS": capCompress, "CLIENT_SSL": capSSL, "CLIENT_QUERY_ATTRIBUTES": capQueryAttributes} {
		if wantCaps&f != 0 {
			t.Errorf("%s must not be offered", name)
		}
	}

	// The next connection gets the next id.
	c2 := dialRaw(t, ts.addr)
	if c2.connID != c.connID+1 {
		t.Errorf("second connection id %d, want %d", c2.connID, c.connID+1)
	}
	if bytes.Equal(c2.scramble, c.scramble) {
		t.Error("two connections got the same scramble")
	}
}

func TestGreetingDefaultsAndTLS(t *testing.T) {
	ts := startServer(t, Options{TLS: &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}})
	c := dialRaw(t, ts.addr)
	v := "5.5.5-10.11.0-MariaDB-shardproxy"
	if !bytes.HasPrefix(c.greeting, append([]byte{10}, v+"\x00"...)) {
		t.Errorf("default version: greeting starts % x", c.greeting[:40])
	}
	off := 1 + len(v) + 1 + 4 + 8 + 1
	caps := uint32(binary.LittleEndian.Uint16(c.greeting[off:])) | uint32(binary.LittleEndian.Uint16(c.greeting[off+5:]))<<16
	if caps != wantCaps|capSSL {
		t.Errorf("capabilities with TLS %#x, want %#x", caps, wantCaps|capSSL)
	}
}

// TestLoginOK: after a good mysql_native_password response, the server answers with an OK
// packet of sequence 2 carrying SERVER_STATUS_AUTOCOMMIT.
func TestLoginOK(t *testing.T) {
	ts := startServer(t, Options{})
	c := dialRaw(t, ts.addr)
	c.send(c.nativeResponse(nativeUser, password))
	if got, want := c.readFrame(), unhex(t, "07000002 00 00 00 0200 0000"); !bytes.Equal(got, want) {
		t.Fatalf("login OK frame % x, want % x", got, want)
	}
	c.cmd(comPing)
	if got, want := c.readFrame(), unhex(t, "07000001 00 00 00 0200 0000"); !bytes.Equal(got, want) {
		t.Fatalf("ping OK frame % x, want % x", got, want)
	}
}

func TestConnInfo(t *testing.T) {
	ts := startServer(t, Options{})
	c := dialRaw(t, ts.addr)
	r := c.nativeResponse(nativeUser, password)
	r.caps |= capConnectWithDB | capCompress | capSessionTrack | capQueryAttributes
	r.collation = 224 // utf8mb4_unicode_ci
	r.db = "shop"
	r.attrs = [][2]string{{"_client_name", "raw"}, {"program_name", "test"}}
	c.send(r)
	c.expectOK()
	s := ts.h.session(t, 0)
	info := s.info
	if info.ID != c.connID || info.User != nativeUser || info.Collation != 224 || info.TLS {
		t.Errorf("ConnInfo = %+v (conn id %d)", info, c.connID)
	}
	if info.Capabilities&(capCompress|capSessionTrack|capQueryAttributes|capDeprecateEOF) != 0 {
		t.Errorf("capabilities %#x keep flags the server did not offer", info.Capabilities)
	}
	if info.Capabilities&capMultiStatements == 0 || info.Capabilities&capConnectWithDB == 0 {
		t.Errorf("capabilities %#x lost agreed flags", info.Capabilities)
	}
	if info.Attributes["_client_name"] != "raw" || info.Attributes["program_name"] != "test" || len(info.Attributes) != 2 {
		t.Errorf("attributes = %v", info.Attributes)
	}
	if host, _, _ := net.SplitHostPort(info.RemoteAddr.String()); host != "127.0.0.1" {
		t.Errorf("remote addr %v", info.RemoteAddr)
	}
	if calls := s.Calls(); len(calls) != 1 || calls[0] != "UseDB shop" {
		t.Errorf("calls = %q, want the handshake database applied", calls)
	}
}

func TestLoginFailures(t *testing.T) {
	cases := []struct {
		name       string
		handlerErr error
		resp       func(c *rawClient) []byte
		code       uint16
		state      string
		msg        string
	}{
		{name: "unknown user", code: 1045, state: "28000",
			msg:  "Access denied for user 'ghost'@'127.0.0.1' (using password: YES)",
			resp: func(c *rawClient) []byte { return c.nativeResponse("ghost", password).encode() }},
		{name: "wrong password", code: 1045, state: "28000",
			msg:  "Access denied for user 'native'@'127.0.0.1' (using password: YES)",
			resp: func(c *rawClient) []byte { return c.nativeResponse(nativeUser, "wrong").encode() }},
		{name: "no password", code: 1045, state: "28000",
			msg: "Access denied for user 'native'@'127.0.0.1' (using password: NO)",
			resp: func(c *rawClient) []byte {
				r := c.nativeResponse(nativeUser, "")
				r.auth = nil
				return r.encode()
			}},
		{name: "short response", code: 1835, state: "HY000",
			resp: func(*rawClient) []byte { return []byte{1, 2, 3} }},
		{name: "user not NUL-terminated", code: 1835, state: "HY000",
			resp: func(c *rawClient) []byte {
				b := c.nativeResponse(nativeUser, password).encode()
				return b[:32+len(nativeUser)]
			}},
		{name: "auth length past the end", code: 1835, state: "HY000",
			resp: func(c *rawClient) []byte {
				r := c.nativeResponse(nativeUser, password)
				r.caps &^= capPluginAuthLenenc | capPluginAuth | capConnectAttrs
				b := r.encode()
				b[32+len(nativeUser)+1] = 200
				return b
			}},
		{name: "pre-4.1 client", code: 1235, state: "42000",
			resp: func(c *rawClient) []byte {
				r := c.nativeResponse(nativeUser, password)
				r.caps &^= capProtocol41
				return r.encode()
			}},
		{name: "unknown initial database", code: 1049, state: "42000", msg: "Unknown database 'nope'",
			resp: func(c *rawClient) []byte {
				r := c.nativeResponse(nativeUser, password)
				r.caps |= capConnectWithDB
				r.db = "nope"
				return r.encode()
			}},
		{name: "handler refuses", code: 1040, state: "08004", handlerErr: sqlerr.New(sqlerr.ErConCount, "no room"),
			resp: func(c *rawClient) []byte { return c.nativeResponse(nativeUser, password).encode() }},
		{name: "handler fails", code: 1105, state: "HY000", handlerErr: errors.New("broken"), msg: "broken",
			resp: func(c *rawClient) []byte { return c.nativeResponse(nativeUser, password).encode() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, Options{})
			ts.h.setErr(tc.handlerErr)
			c := dialRaw(t, ts.addr)
			c.w.SetSeq(1)
			c.write(tc.resp(c))
			if c.w.Seq() != 2 {
				t.Fatalf("sequence %d", c.w.Seq())
			}
			msg := c.expectErr(tc.code, tc.state)
			if tc.msg != "" && msg != tc.msg {
				t.Errorf("message %q, want %q", msg, tc.msg)
			}
			c.expectClosed()
		})
	}
}

func TestTLSRequestWithoutTLS(t *testing.T) {
	ts := startServer(t, Options{})
	c := dialRaw(t, ts.addr)
	ssl := handshakeResponse41{caps: clientCaps | capSSL, collation: 45}.encode()[:32]
	c.w.SetSeq(1)
	c.write(ssl)
	c.expectErr(1235, "42000")
	c.expectClosed()
}

func TestUnknownCommand(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	c.cmd(0x99)
	msg := []byte("Unknown command 153")
	want := frameOf(1, append(unhex(t, "ff 1704 23 3038533031"), msg...))
	if got := c.readFrame(); !bytes.Equal(got, want) {
		t.Fatalf("ERR frame\n% x\nwant\n% x", got, want)
	}
	c.ping()
	c.cmd(comChangeUser, []byte("x\x00")...) // not supported: an error, not a hang
	c.expectErr(1047, "08S01")
	c.ping()
}

func TestEmptyCommandPacket(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	c.w.ResetSeq()
	c.write(nil)
	c.expectErr(1835, "HY000")
	c.ping()
}

func TestSetOption(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	s := ts.h.session(t, 0)
	query := func(q string) {
		t.Helper()
		c.cmd(comQuery, []byte(q)...)
		c.expectOK()
	}
	query("a")
	c.cmd(comSetOption, 1, 0) // MYSQL_OPTION_MULTI_STATEMENTS_OFF
	if got, want := c.readFrame(), unhex(t, "05000001 fe 0000 0200"); !bytes.Equal(got, want) {
		t.Fatalf("COM_SET_OPTION answer % x, want EOF % x", got, want)
	}
	query("b")
	c.cmd(comSetOption, 0, 0) // MYSQL_OPTION_MULTI_STATEMENTS_ON
	if p := c.read(); !wire.IsEOF(p) {
		t.Fatalf("COM_SET_OPTION answer % x, want EOF", p)
	}
	query("c")
	c.cmd(comSetOption, 1, 0)
	c.read()
	c.cmd(comSetOption, 2, 0)
	c.expectErr(1047, "08S01")
	c.cmd(comSetOption, 0)
	c.expectErr(1047, "08S01")
	c.cmd(comResetConnection)
	c.expectOK()
	query("d") // back to the handshake's choice
	want := []string{"Query multi=true a", "Query multi=false b", "Query multi=true c", "Reset", "Query multi=true d"}
	if got := s.Calls(); !equalStrings(got, want) {
		t.Errorf("calls\n%q\nwant\n%q", got, want)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStatistics(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	c.ping()
	c.cmd(comStatistics)
	p := string(c.read())
	if !strings.HasPrefix(p, "Uptime: ") || !strings.Contains(p, "  Threads: 1  Questions: 2  ") || !strings.Contains(p, "Queries per second avg: ") {
		t.Errorf("statistics %q", p)
	}
	c.ping()
}

func TestQuit(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	c.cmd(comQuit)
	c.expectClosed()
	ts.h.session(t, 0).waitClosed(t)
}

func TestInitDBAndFieldList(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	c.cmd(comInitDB, []byte("shop")...)
	if got, want := c.readFrame(), unhex(t, "07000001 00 00 00 0200 0000"); !bytes.Equal(got, want) {
		t.Errorf("COM_INIT_DB answer % x, want % x", got, want)
	}
	c.cmd(comInitDB, []byte("nope")...)
	c.expectErr(1049, "42000")
	c.cmd(comFieldList, []byte("orders\x00i%")...)
	def := c.read()
	if name, ok := wire.ParseColumnName(def); !ok || name != "id" {
		t.Errorf("field list definition % x", def)
	}
	if p := c.read(); !wire.IsEOF(p) {
		t.Errorf("field list end % x, want EOF", p)
	}
	c.cmd(comFieldList, []byte("t")...) // no NUL: no wildcard
	c.read()
	c.read()
	want := []string{"UseDB shop", "UseDB nope", `FieldList "orders" "i%"`, `FieldList "t" ""`}
	if got := ts.h.session(t, 0).Calls(); !equalStrings(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}

func TestQueryResult(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	c.cmd(comQuery, []byte("SELECT 1")...)
	// Column count, definition, EOF, row, EOF: sequence numbers 1 to 5.
	want := [][]byte{
		frameOf(1, []byte{1}),
		frameOf(2, wire.AppendColumnDef(nil, wire.Column{Name: "1", Charset: 63, Length: 1, Type: 0x08, Flags: 0x81})),
		frameOf(3, unhex(t, "fe 0000 0200")),
		frameOf(4, unhex(t, "01 31")),
		frameOf(5, unhex(t, "fe 0000 0200")),
	}
	for i, w := range want {
		if got := c.readFrame(); !bytes.Equal(got, w) {
			t.Errorf("result packet %d: % x, want % x", i, got, w)
		}
	}
	c.cmd(comQuery, []byte("status 3")...)
	if ok := c.expectOK(); ok.Status != 3 {
		t.Errorf("status %#x", ok.Status)
	}
	c.ping() // the protocol's own OK carries the session's status
	c.cmd(comPing)
	if ok := c.expectOK(); ok.Status != 3 {
		t.Errorf("ping status %#x, want the session's 0x3", ok.Status)
	}
}

func TestErrorMapping(t *testing.T) {
	timeout := sqlerr.New(sqlerr.ErQueryTimeout, "")
	cases := []struct {
		query string
		code  uint16
		state string
		msg   string
	}{
		{"error", 1146, "42S02", "Table 'shop.t' doesn't exist"},
		{"plain error", 1105, "HY000", "something broke"},
		{"deadline", 3024, timeout.State, "Query execution was interrupted, maximum statement execution time exceeded"},
		{"canceled", 1317, "70100", "Query execution was interrupted"},
	}
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	for _, tc := range cases {
		c.cmd(comQuery, []byte(tc.query)...)
		if msg := c.expectErr(tc.code, tc.state); msg != tc.msg {
			t.Errorf("%s: message %q, want %q", tc.query, msg, tc.msg)
		}
		c.ping()
	}
	c.cmd(comQuery, []byte("fatal")...)
	c.expectErr(sqlerr.ErConnLost, "HY000")
	c.expectClosed()
	ts.h.session(t, 0).waitClosed(t)
}

// TestOutcomeUnknownCloses: "connection lost, outcome unknown" is said by closing the
// connection without an ERR packet, so the client's driver reports its own 2013.
func TestOutcomeUnknownCloses(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	c.cmd(comQuery, []byte("lost")...)
	c.expectClosed()
	ts.h.session(t, 0).waitClosed(t)
}

// TestNoClientCodesOnTheWire: no ERR packet the protocol writes carries a client-range
// code (2000-2999), which libmariadb reads as a malformed packet (2027): an error that
// carries one anyway goes out as 1105 with the code in its message.
func TestNoClientCodesOnTheWire(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	for _, code := range []int{2000, 2003, 2006, 2013, 2027, 2999} {
		c.cmd(comQuery, []byte(fmt.Sprintf("client code %d", code))...)
		msg := c.expectErr(sqlerr.ErUnknownError, "HY000")
		if want := fmt.Sprintf("a client-range code (client error code %d)", code); msg != want {
			t.Errorf("code %d: message %q, want %q", code, msg, want)
		}
	}
	c.cmd(comQuery, []byte("client code 1999")...) // server codes pass as they are
	c.expectErr(1999, "HY000")
	c.cmd(comQuery, []byte("client code 3000")...)
	c.expectErr(3000, "HY000")
	c.ping()
}

func TestMaxAllowedPacket(t *testing.T) {
	ts := startServer(t, Options{MaxAllowedPacket: 1024})
	c := loginNative(t, ts.addr)
	c.cmd(comQuery, bytes.Repeat([]byte{'x'}, 1023)...) // exactly 1024 bytes: allowed
	if ok := c.expectOK(); ok.AffectedRows != 1023 {
		t.Errorf("affected %d", ok.AffectedRows)
	}
	c.cmd(comQuery, bytes.Repeat([]byte{'x'}, 2000)...)
	msg := c.expectErr(1153, "08S01")
	if msg != "Got a packet bigger than 'max_allowed_packet' bytes" {
		t.Errorf("message %q", msg)
	}
	c.expectClosed()
	ts.h.session(t, 0).waitClosed(t)
	if calls := ts.h.session(t, 0).Calls(); len(calls) != 2 {
		t.Errorf("calls %q: the large query must not reach the session", calls)
	}
}

// A client still sending a refused packet reads the 1153 that explains the refusal: the
// proxy drains what is in flight before it closes, instead of resetting the connection
// under the client's write (a 4 MiB packet is more than the socket buffers hold).
func TestMaxAllowedPacketWhileStillSending(t *testing.T) {
	ts := startServer(t, Options{MaxAllowedPacket: 1024})
	c := loginNative(t, ts.addr)
	c.cmd(comQuery, bytes.Repeat([]byte{'x'}, 4<<20)...)
	c.expectErr(1153, "08S01")
	c.expectClosed()
}

func TestPanicClosesOnlyThatConnection(t *testing.T) {
	ts := startServer(t, Options{})
	c1 := loginNative(t, ts.addr)
	c2 := loginNative(t, ts.addr)
	c1.cmd(comQuery, []byte("panic")...)
	c1.expectClosed()
	ts.h.session(t, 0).waitClosed(t)
	// The session first drops what it holds as unusable, then closes.
	if calls := ts.h.session(t, 0).Calls(); len(calls) < 2 || !slices.Equal(calls[len(calls)-2:], []string{"Abandon", "Close"}) {
		t.Errorf("session calls %q, want Abandon then Close after the panic", calls)
	}
	c2.ping()
	c2.cmd(comQuery, []byte("still here")...)
	c2.expectOK()
	c3 := loginNative(t, ts.addr)
	c3.ping()
	waitFor(t, "the panicked connection to leave the table", func() bool { return ts.ConnCount() == 2 })
}

func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, Options{IdleTimeout: 50 * time.Millisecond})
	c := loginNative(t, ts.addr)
	c.expectClosed()
	ts.h.session(t, 0).waitClosed(t)
}

func TestHandshakeTimeout(t *testing.T) {
	ts := startServer(t, Options{HandshakeTimeout: 50 * time.Millisecond})
	c := dialRaw(t, ts.addr)
	c.expectClosed()
	if ts.h.count() != 0 {
		t.Error("a session was created for a connection that never logged in")
	}
}

func TestMaxConnections(t *testing.T) {
	ts := startServer(t, Options{MaxConnections: 1})
	c1 := loginNative(t, ts.addr)
	c2 := dialRaw(t, ts.addr)
	// ERR in place of the greeting, sequence 0.
	want := frameOf(0, append(unhex(t, "ff 1004 23 3038303034"), "Too many connections"...))
	got := frameOf(0, c2.greeting)
	if !bytes.Equal(got, want) {
		t.Fatalf("rejection\n% x\nwant\n% x", got, want)
	}
	c2.expectClosed()
	c1.ping()
	c1.cmd(comQuit)
	c1.expectClosed()
	waitFor(t, "both connections to leave the table", func() bool { return ts.ConnCount() == 0 })
	c3 := loginNative(t, ts.addr)
	c3.ping()
}

func TestShutdownGraceful(t *testing.T) {
	ts := startServer(t, Options{})
	idle := loginNative(t, ts.addr)
	busy := loginNative(t, ts.addr)
	busy.cmd(comQuery, []byte("block")...)
	<-ts.h.started

	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(context.Background()) }()
	idle.expectClosed() // Shutdown is under way
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Error("the listener still accepts after Shutdown")
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while a statement was running", err)
	default:
	}
	close(ts.h.release)
	busy.expectOK() // the statement in flight completes
	busy.expectClosed()
	if err := <-done; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if n := ts.ConnCount(); n != 0 {
		t.Errorf("%d connections left", n)
	}
	for i := range 2 {
		ts.h.session(t, i).waitClosed(t)
	}
}

func TestShutdownDeadline(t *testing.T) {
	ts := startServer(t, Options{})
	busy := loginNative(t, ts.addr)
	busy.cmd(comQuery, []byte("block")...)
	<-ts.h.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want context.Canceled", err)
	}
	busy.expectClosed()
	ts.h.session(t, 0).waitClosed(t)
}

func TestClose(t *testing.T) {
	ts := startServer(t, Options{})
	idle := loginNative(t, ts.addr)
	busy := loginNative(t, ts.addr)
	busy.cmd(comQuery, []byte("block")...)
	<-ts.h.started
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	idle.expectClosed()
	busy.expectClosed()
	if n := ts.ConnCount(); n != 0 {
		t.Errorf("%d connections after Close", n)
	}
	if err := ts.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := ts.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close = %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"zero", Options{}, true},
		{"packet 1024", Options{MaxAllowedPacket: 1024}, true},
		{"packet 1023", Options{MaxAllowedPacket: 1023}, false},
		{"negative packet", Options{MaxAllowedPacket: -1}, false},
		{"negative handshake timeout", Options{HandshakeTimeout: -1}, false},
		{"negative idle timeout", Options{IdleTimeout: -time.Second}, false},
		{"negative write timeout", Options{WriteTimeout: -1}, false},
		{"negative max connections", Options{MaxConnections: -1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if (err == nil) != tc.ok {
				t.Errorf("Validate = %v", err)
			}
			if _, nerr := NewServer(tc.o, users{}, newStubHandler()); (nerr == nil) != tc.ok {
				t.Errorf("NewServer = %v", nerr)
			}
		})
	}
}

// TestClientGoneCancelsStatement: Session's contract is that a statement's context "is
// cancelled when the client goes away" (DESIGN invariant 2: a disconnect kills the backend
// query). A client that disconnects in the middle of a statement must cancel it.
func TestClientGoneCancelsStatement(t *testing.T) {
	ts := startServer(t, Options{})
	c := loginNative(t, ts.addr)
	c.cmd(comQuery, []byte("block")...)
	<-ts.h.started
	_ = c.nc.Close()
	s := ts.h.session(t, 0)
	select {
	case <-s.closed:
	case <-time.After(3 * time.Second):
		t.Error("a client that disconnects during a statement must cancel the statement's context " +
			"(Session's contract: cancelled \"when the client goes away\")")
	}
}

// TestHandshakePacketBound: before login a packet may be only as large as a handshake
// needs, whatever max_allowed_packet says; the announced length is not read, the client
// gets ER_HANDSHAKE_ERROR. Normal logins with connection attributes pass, and after login
// packets up to max_allowed_packet are read.
func TestHandshakePacketBound(t *testing.T) {
	ts := startServer(t, Options{})
	c := dialRaw(t, ts.addr)
	r := c.nativeResponse(nativeUser, password)
	r.caps |= capConnectAttrs
	r.attrs = [][2]string{{"_client_name", "test"}, {"padding", string(bytes.Repeat([]byte{'a'}, 9000))}}
	c.send(r)
	c.expectErr(1043, "08S01")
	c.expectClosed()

	// A header alone, announcing 16 MiB.
	c = dialRaw(t, ts.addr)
	if _, err := c.nc.Write([]byte{0xff, 0xff, 0xff, 1}); err != nil {
		t.Fatal(err)
	}
	c.w.SetSeq(2)
	c.expectErr(1043, "08S01")
	c.expectClosed()

	c = dialRaw(t, ts.addr)
	r = c.nativeResponse(nativeUser, password)
	r.caps |= capConnectAttrs
	r.attrs = [][2]string{{"_client_name", "test"}, {"_os", "linux"}, {"program_name", "shardproxy-test"}}
	c.send(r)
	c.expectOK()
	c.cmd(comQuery, bytes.Repeat([]byte{'x'}, 200_000)...)
	if ok := c.expectOK(); ok.AffectedRows != 200_000 {
		t.Errorf("a 200 KB query after login: affected %d", ok.AffectedRows)
	}
}
