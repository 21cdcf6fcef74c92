package integration

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// Command bytes and capability flags the raw client uses.
const (
	comQuit            = 0x01
	comInitDB          = 0x02
	comQuery           = 0x03
	comPing            = 0x0e
	comStmtPrepare     = 0x16
	comStmtExecute     = 0x17
	comStmtSendLong    = 0x18
	comStmtClose       = 0x19
	comStmtReset       = 0x1a
	comResetConnection = 0x1f

	capLongPassword     = 0x00000001
	capLongFlag         = 0x00000004
	capConnectWithDB    = 0x00000008
	capProtocol41       = 0x00000200
	capSSL              = 0x00000800
	capTransactions     = 0x00002000
	capSecureConnection = 0x00008000
	capMultiStatements  = 0x00010000
	capMultiResults     = 0x00020000
	capPSMultiResults   = 0x00040000
	capPluginAuth       = 0x00080000

	statusMoreResults = 0x0008

	typeTiny     = 0x01
	typeLong     = 0x03
	typeLongLong = 0x08
	typeVarStr   = 0xfd
	typeString   = 0xfe
	typeBlob     = 0xfc
)

const rawCaps = capLongPassword | capLongFlag | capProtocol41 | capTransactions |
	capSecureConnection | capMultiResults | capPSMultiResults | capPluginAuth

// rawConn speaks the MySQL protocol packet by packet, for what drivers cannot do: commands
// drivers never send (COM_RESET_CONNECTION), malformed packets, byte-exact comparisons.
type rawConn struct {
	nc       net.Conn
	br       *bufio.Reader
	seq      byte
	ConnID   uint32 // from the greeting
	Version  string // from the greeting
	Scramble []byte // from the greeting
	Plugin   string // the plugin the login ended with
	AuthMore []byte // the last AuthMoreData payload seen during login (0x01 0x03 = fast path)
}

// serverError is an ERR packet.
type serverError struct {
	Code    uint16
	State   string
	Message string
}

func (e *serverError) Error() string {
	return fmt.Sprintf("ERROR %d (%s): %s", e.Code, e.State, e.Message)
}

func parseErrPacket(p []byte) *serverError {
	e := &serverError{}
	if len(p) >= 3 {
		e.Code = binary.LittleEndian.Uint16(p[1:])
	}
	rest := p[min(3, len(p)):]
	if len(rest) >= 6 && rest[0] == '#' {
		e.State, rest = string(rest[1:6]), rest[6:]
	}
	e.Message = string(rest)
	return e
}

// dialRaw connects without reading anything; Cleanup closes the socket.
func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(2 * time.Minute))
	return &rawConn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10)}
}

// connectRaw dials, reads the greeting and logs in, failing the test on error.
func connectRaw(t testing.TB, addr, user, pass, db string) *rawConn {
	t.Helper()
	c := dialRaw(t, addr)
	if err := c.readGreeting(); err != nil {
		t.Fatalf("greeting from %s: %v", addr, err)
	}
	if err := c.login(user, pass, db, 0); err != nil {
		t.Fatalf("login to %s as %s: %v", addr, user, err)
	}
	return c
}

func (c *rawConn) readPacket() ([]byte, error) {
	var hdr [4]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
			return nil, err
		}
		n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		c.seq = hdr[3] + 1
		start := len(payload)
		payload = append(payload, make([]byte, n)...)
		if _, err := io.ReadFull(c.br, payload[start:]); err != nil {
			return nil, err
		}
		if n < 1<<24-1 {
			return payload, nil
		}
	}
}

func (c *rawConn) writePacket(p []byte) error {
	for {
		n := min(len(p), 1<<24-1)
		buf := make([]byte, 4, 4+n)
		buf[0], buf[1], buf[2], buf[3] = byte(n), byte(n>>8), byte(n>>16), c.seq
		c.seq++
		if _, err := c.nc.Write(append(buf, p[:n]...)); err != nil {
			return err
		}
		p = p[n:]
		if n < 1<<24-1 {
			return nil
		}
	}
}

// command starts a new exchange (sequence 0) with one command packet.
func (c *rawConn) command(cmd byte, data []byte) error {
	c.seq = 0
	return c.writePacket(append([]byte{cmd}, data...))
}

func (c *rawConn) readGreeting() error {
	p, err := c.readPacket()
	if err != nil {
		return err
	}
	if p[0] == 0xff {
		return parseErrPacket(p)
	}
	if p[0] != 10 {
		return fmt.Errorf("greeting: protocol version %d", p[0])
	}
	i := bytes.IndexByte(p[1:], 0)
	if i < 0 {
		return errors.New("greeting: no server version")
	}
	c.Version = string(p[1 : 1+i])
	r := p[1+i+1:]
	if len(r) < 4+8+1+2+1+2+2+1+10+12 {
		return errors.New("greeting: short")
	}
	c.ConnID = binary.LittleEndian.Uint32(r)
	c.Scramble = append(append([]byte(nil), r[4:12]...), r[31:31+12]...)
	return nil
}

// login sends a HandshakeResponse41 with mysql_native_password and follows auth switches and
// caching_sha2_password exchanges (sending the password in clear for a full
// authentication, which the proxy accepts over loopback).
func (c *rawConn) login(user, pass, db string, extraCaps uint32) error {
	caps := uint32(rawCaps) | extraCaps
	if db != "" {
		caps |= capConnectWithDB
	}
	p := binary.LittleEndian.AppendUint32(nil, caps)
	p = binary.LittleEndian.AppendUint32(p, 16<<20)
	p = append(p, 45) // utf8mb4_general_ci
	p = append(p, make([]byte, 23)...)
	p = append(p, user...)
	p = append(p, 0)
	auth := scrambleNative(pass, c.Scramble)
	p = append(p, byte(len(auth)))
	p = append(p, auth...)
	if db != "" {
		p = append(p, db...)
		p = append(p, 0)
	}
	p = append(p, "mysql_native_password"...)
	p = append(p, 0)
	c.Plugin = "mysql_native_password"
	if err := c.writePacket(p); err != nil {
		return err
	}
	for {
		p, err := c.readPacket()
		if err != nil {
			return err
		}
		switch p[0] {
		case 0x00:
			return nil
		case 0xff:
			return parseErrPacket(p)
		case 0xfe: // AuthSwitchRequest: plugin name, NUL, new scramble (NUL-terminated)
			name, data, _ := bytes.Cut(p[1:], []byte{0})
			c.Plugin, c.Scramble = string(name), bytes.TrimRight(data, "\x00")
			var reply []byte
			switch c.Plugin {
			case "mysql_native_password":
				reply = scrambleNative(pass, c.Scramble)
			case "caching_sha2_password":
				reply = scrambleSha2(pass, c.Scramble)
			default:
				return fmt.Errorf("auth switch to unsupported plugin %q", c.Plugin)
			}
			if err := c.writePacket(reply); err != nil {
				return err
			}
		case 0x01: // AuthMoreData
			c.AuthMore = append([]byte(nil), p...)
			if len(p) == 2 && p[1] == 0x04 { // perform_full_authentication
				if err := c.writePacket(append([]byte(pass), 0)); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("unexpected packet during login: % x", p)
		}
	}
}

func scrambleNative(pass string, scramble []byte) []byte {
	if pass == "" {
		return nil
	}
	s1 := sha1.Sum([]byte(pass))
	s2 := sha1.Sum(s1[:])
	h := sha1.New()
	h.Write(scramble[:20])
	h.Write(s2[:])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= s1[i]
	}
	return out
}

func scrambleSha2(pass string, scramble []byte) []byte {
	s1 := sha256.Sum256([]byte(pass))
	s2 := sha256.Sum256(s1[:])
	h := sha256.New()
	h.Write(s2[:])
	h.Write(scramble[:20])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= s1[i]
	}
	return out
}

// rawResult is one result of a command: an OK packet, or a result set's packets.
type rawResult struct {
	OK      []byte   // the OK packet, when there is no result set
	Columns [][]byte // column definition packets
	Rows    [][]byte // row packets (text or binary protocol), as received
	Status  uint16   // status flags of the final OK or EOF
}

// readResult reads one result; a server ERR is returned as *serverError.
func (c *rawConn) readResult() (rawResult, error) {
	var r rawResult
	p, err := c.readPacket()
	if err != nil {
		return r, err
	}
	switch {
	case p[0] == 0xff:
		return r, parseErrPacket(p)
	case p[0] == 0x00:
		r.OK = p
		_, _, r.Status = parseOK(p)
		return r, nil
	}
	ncols, _ := lenencInt(p)
	for i := uint64(0); i < ncols; i++ {
		d, err := c.readPacket()
		if err != nil {
			return r, err
		}
		r.Columns = append(r.Columns, d)
	}
	if _, err := c.readPacket(); err != nil { // EOF after the definitions
		return r, err
	}
	for {
		p, err := c.readPacket()
		if err != nil {
			return r, err
		}
		if p[0] == 0xff {
			return r, parseErrPacket(p)
		}
		if p[0] == 0xfe && len(p) < 9 {
			r.Status = binary.LittleEndian.Uint16(p[3:])
			return r, nil
		}
		r.Rows = append(r.Rows, p)
	}
}

// query sends COM_QUERY and reads every result of it.
func (c *rawConn) query(sql string) ([]rawResult, error) {
	if err := c.command(comQuery, []byte(sql)); err != nil {
		return nil, err
	}
	return c.readResults()
}

func (c *rawConn) readResults() ([]rawResult, error) {
	var out []rawResult
	for {
		r, err := c.readResult()
		if err != nil {
			return out, err
		}
		out = append(out, r)
		if r.Status&statusMoreResults == 0 {
			return out, nil
		}
	}
}

// queryValue runs a query returning one text value (nil for NULL).
func (c *rawConn) queryValue(t testing.TB, sql string) *string {
	t.Helper()
	rs, err := c.query(sql)
	if err != nil {
		t.Fatalf("%q: %v", sql, err)
	}
	if len(rs) != 1 || len(rs[0].Rows) != 1 {
		t.Fatalf("%q: want one row, got %+v", sql, rs)
	}
	v, null, _ := lenencString(rs[0].Rows[0])
	if null {
		return nil
	}
	s := string(v)
	return &s
}

// prepare sends COM_STMT_PREPARE and returns the statement id and parameter count.
func (c *rawConn) prepare(sql string) (id uint32, params int, err error) {
	if err := c.command(comStmtPrepare, []byte(sql)); err != nil {
		return 0, 0, err
	}
	p, err := c.readPacket()
	if err != nil {
		return 0, 0, err
	}
	if p[0] == 0xff {
		return 0, 0, parseErrPacket(p)
	}
	if len(p) < 12 {
		return 0, 0, fmt.Errorf("short COM_STMT_PREPARE_OK: % x", p)
	}
	id = binary.LittleEndian.Uint32(p[1:])
	cols := int(binary.LittleEndian.Uint16(p[5:]))
	params = int(binary.LittleEndian.Uint16(p[7:]))
	for _, n := range []int{params, cols} {
		if n == 0 {
			continue
		}
		for range n + 1 { // definitions and EOF
			if _, err := c.readPacket(); err != nil {
				return 0, 0, err
			}
		}
	}
	return id, params, nil
}

// execPayload builds a COM_STMT_EXECUTE body. With types nil the new-params-bound flag is 0
// (the server must reuse the types of the previous execute).
func execPayload(id uint32, nulls []byte, types []byte, values []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, id)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 1)
	if nulls == nil {
		return b
	}
	b = append(b, nulls...)
	if types != nil {
		b = append(b, 1)
		b = append(b, types...)
	} else {
		b = append(b, 0)
	}
	return append(b, values...)
}

// ping sends COM_PING and expects OK.
func (c *rawConn) ping() error {
	if err := c.command(comPing, nil); err != nil {
		return err
	}
	r, err := c.readResult()
	if err != nil {
		return err
	}
	if r.OK == nil {
		return fmt.Errorf("COM_PING: not an OK packet")
	}
	return nil
}

// closed reports whether the peer closes the connection within timeout (after any packets
// it still sends, which are discarded).
func (c *rawConn) closed(timeout time.Duration) error {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	_, err := io.Copy(io.Discard, c.br)
	if err == nil {
		return nil // EOF
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("connection still open after %v", timeout)
	}
	return nil // reset: closed too
}

func parseOK(p []byte) (affected, lastID uint64, status uint16) {
	r := p[1:]
	affected, n := lenencInt(r)
	r = r[n:]
	lastID, n = lenencInt(r)
	r = r[n:]
	if len(r) >= 2 {
		status = binary.LittleEndian.Uint16(r)
	}
	return affected, lastID, status
}

func lenencInt(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	switch b[0] {
	case 0xfc:
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3
	case 0xfd:
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4
	case 0xfe:
		return binary.LittleEndian.Uint64(b[1:]), 9
	}
	return uint64(b[0]), 1
}

func lenencString(b []byte) (s []byte, null bool, n int) {
	if len(b) > 0 && b[0] == 0xfb {
		return nil, true, 1
	}
	l, n := lenencInt(b)
	return b[n : n+int(l)], false, n + int(l)
}

func appendLenencString(b []byte, s []byte) []byte {
	switch n := len(s); {
	case n < 251:
		b = append(b, byte(n))
	case n < 1<<16:
		b = append(b, 0xfc, byte(n), byte(n>>8))
	case n < 1<<24:
		b = append(b, 0xfd, byte(n), byte(n>>8), byte(n>>16))
	default:
		b = append(b, 0xfe)
		b = binary.LittleEndian.AppendUint64(b, uint64(n))
	}
	return append(b, s...)
}
