package protocol

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/wire"
)

// scriptConn is an in-memory client connection driven by a script: whenever the server
// reads and nothing is pending, next is asked for the client's next bytes, given everything
// the server wrote so far; nil means the client has nothing more to say (end of stream).
// Reads never block, so a connection served on it runs to its end in the calling goroutine.
type scriptConn struct {
	in     []byte
	out    bytes.Buffer
	next   func(out []byte) []byte
	closed bool
}

func (c *scriptConn) Read(b []byte) (int, error) {
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
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.out.Write(b)
}

func (c *scriptConn) Close() error { c.closed = true; return nil }
func (c *scriptConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3307}
}
func (c *scriptConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// serverPackets splits what the server wrote into packets; it fails the test on a frame
// that does not parse.
func serverPackets(t *testing.T, out []byte) (pkts [][]byte, lastSeq byte) {
	t.Helper()
	for len(out) > 0 {
		if len(out) < 4 {
			t.Fatalf("server wrote a truncated packet header: % x", out)
		}
		n := int(out[0]) | int(out[1])<<8 | int(out[2])<<16
		if len(out) < 4+n {
			t.Fatalf("server wrote a packet of %d bytes announcing %d", len(out)-4, n)
		}
		pkts, lastSeq = append(pkts, out[4:4+n]), out[3]
		out = out[4+n:]
	}
	return pkts, lastSeq
}

// frameAfter frames payload with the sequence number that follows the server's last packet.
func frameAfter(out []byte, payload []byte) []byte {
	seq := byte(0)
	for len(out) >= 4 {
		n := int(out[0]) | int(out[1])<<8 | int(out[2])<<16
		if len(out) < 4+n {
			break
		}
		seq = out[3] + 1
		out = out[4+n:]
	}
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

// panicLog counts the "connection panicked" records of a server's logger and keeps the
// last one's panic value and stack.
type panicLog struct {
	n    atomic.Int64
	last atomic.Value // string
}

func (h *panicLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicLog) Handle(_ context.Context, r slog.Record) error {
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
func (h *panicLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *panicLog) WithGroup(string) slog.Handler      { return h }

// checkServerOutput: every packet the server wrote parses, and every ERR packet carries a
// server-range code with a SQLSTATE.
func checkServerOutput(t *testing.T, out []byte) {
	t.Helper()
	pkts, _ := serverPackets(t, out)
	for _, p := range pkts {
		if !wire.IsErr(p) {
			continue
		}
		e := wire.ParseErr(p)
		if e == nil || e.Code < 1000 || (e.Code >= 2000 && e.Code < 3000) {
			t.Fatalf("ERR packet with a code outside the server range: % x", p)
		}
	}
}

// greetingScramble is the 20-byte scramble of a HandshakeV10 packet (nil if malformed).
func greetingScramble(g []byte) []byte {
	if len(g) < 1 || g[0] != 10 {
		return nil
	}
	end := bytes.IndexByte(g[1:], 0)
	if end < 0 {
		return nil
	}
	pos := end + 2 + 4
	if len(g) < pos+8+1+2+1+2+2+1+10+12 {
		return nil
	}
	s := append([]byte(nil), g[pos:pos+8]...)
	pos += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10
	return append(s, g[pos:pos+12]...)
}

// handshakeScript answers the server during a login. The first answer (after the
// greeting) is the handshake response: resp verbatim, or (mode bit 0) a well-formed one
// for user native or sha2 (bit 1) with the right scramble (bit 2) or resp as auth data, and
// a plugin chosen by bits 3-4. Later answers (auth switch, sha2 full auth) are switchResp
// verbatim, or (bit 5) what a real client would send; the client stops after four rounds.
func handshakeScript(t *testing.T, resp, switchResp []byte, mode uint8) func(out []byte) []byte {
	round := 0
	return func(out []byte) []byte {
		round++
		pkts, _ := serverPackets(t, out)
		if len(pkts) == 0 || round > 4 {
			return nil
		}
		last := pkts[len(pkts)-1]
		if round == 1 {
			return frameAfter(out, firstResponse(pkts[0], resp, mode))
		}
		if mode&0x20 == 0 || len(last) == 0 {
			return frameAfter(out, switchResp)
		}
		switch {
		case last[0] == wire.EOFHeader: // auth switch request: plugin NUL scramble NUL
			plugin, rest, _ := bytes.Cut(last[1:], []byte{0})
			scramble := bytes.TrimRight(rest, "\x00")
			if string(plugin) == PluginNative {
				return frameAfter(out, mysql.CalcNativePassword(scramble, []byte(password)))
			}
			return frameAfter(out, mysql.CalcCachingSha2Password(scramble, []byte(password)))
		case len(last) == 2 && last[0] == 0x01 && last[1] == 0x04: // full authentication
			return frameAfter(out, append([]byte(password), 0))
		}
		return nil // OK or ERR: the login is over; end of stream
	}
}

func firstResponse(greeting, resp []byte, mode uint8) []byte {
	if mode&1 == 0 {
		return resp
	}
	user := nativeUser
	if mode&2 != 0 {
		user = sha2User
	}
	r := handshakeResponse41{caps: clientCaps, collation: 45, user: user, auth: resp}
	if len(resp) >= 4 { // let the fuzzer flip capability bits too
		r.caps ^= binary.LittleEndian.Uint32(resp)
	}
	r.plugin = []string{PluginNative, PluginCachingSha2, "", "mysql_clear_password"}[mode>>3&3]
	if mode&4 != 0 {
		if s := greetingScramble(greeting); s != nil {
			if r.plugin == PluginCachingSha2 {
				r.auth = mysql.CalcCachingSha2Password(s, []byte(password))
			} else {
				r.auth = mysql.CalcNativePassword(s, []byte(password))
			}
		}
	}
	if mode&0x40 != 0 {
		r.caps |= capConnectWithDB
		r.db = "db1"
	}
	if mode&0x80 != 0 {
		r.attrs = [][2]string{{"_client_name", "fuzz"}, {string(resp), "x"}}
	}
	return r.encode()
}

// FuzzHandshake drives the server side of a login over an in-memory connection with
// arbitrary handshake responses and auth-switch / full-authentication answers. The server
// must never panic, must write only well-framed packets with server-range error codes,
// and must end the connection when the client stops talking.
func FuzzHandshake(f *testing.F) {
	logs := &panicLog{}
	sha2Hash, err := HashSha2(password)
	if err != nil {
		f.Fatal(err)
	}
	srv, err := NewServer(Options{Logger: slog.New(logs), MaxAllowedPacket: 1 << 20},
		users{nativeUser: HashNative(password), sha2User: sha2Hash}, newStubHandler())
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{}, []byte{}, uint8(0))
	f.Add([]byte("garbage"), []byte("x"), uint8(0x01))
	f.Add([]byte{}, []byte{}, uint8(0x05))         // native, right password
	f.Add([]byte{}, []byte{}, uint8(0x27))         // sha2 user, native plugin → switch, answered right
	f.Add([]byte{}, []byte{}, uint8(0x2f))         // sha2 user and plugin, right scramble: full auth
	f.Add([]byte{1, 2, 3}, []byte{2}, uint8(0x13)) // sha2 user, no plugin, RSA key request
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0}, []byte{0xff}, uint8(0xc5))
	f.Fuzz(func(t *testing.T, resp, switchResp []byte, mode uint8) {
		sc := &scriptConn{next: handshakeScript(t, resp, switchResp, mode)}
		before := logs.n.Load()
		newConn(srv, sc, 1).serve(false)
		if logs.n.Load() != before {
			t.Fatalf("the connection panicked (resp % x, switch % x, mode %#x):\n%s", resp, switchResp, mode, logs.last.Load())
		}
		if !sc.closed {
			t.Fatal("the server did not close the connection")
		}
		checkServerOutput(t, sc.out.Bytes())
	})
}

// TestHandshakeScript checks that FuzzHandshake's scripted client reaches the paths it is
// meant to: a native login, a switch to mysql_native_password, and sha2 full authentication
// (cleartext over loopback), each ending in OK.
func TestHandshakeScript(t *testing.T) {
	sha2Hash, err := HashSha2(password)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Options{}, users{nativeUser: HashNative(password), sha2User: sha2Hash}, newStubHandler())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		mode uint8
		want []byte // the packet before the final OK
	}{
		{"native", 0x05, nil},
		{"switch to native", 0x25 | 1<<3, []byte{wire.EOFHeader}},
		{"sha2 full auth", 0x27 | 1<<3, []byte{0x01, 0x04}},
	} {
		sc := &scriptConn{next: handshakeScript(t, nil, nil, c.mode)}
		newConn(srv, sc, 1).serve(false)
		pkts, _ := serverPackets(t, sc.out.Bytes())
		last := pkts[len(pkts)-1]
		if last[0] != wire.OKHeader {
			t.Errorf("%s: login ended with % x", c.name, last)
			continue
		}
		if c.want != nil && !bytes.HasPrefix(pkts[len(pkts)-2], c.want) {
			t.Errorf("%s: packet before OK is % x, want prefix % x", c.name, pkts[len(pkts)-2], c.want)
		}
	}
}
