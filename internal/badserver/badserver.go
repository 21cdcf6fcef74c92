package badserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Scenarios lists the malformed answers, each at a different point of a result set.
var Scenarios = []string{
	"empty-packet",       // an empty packet where the answer starts
	"eof-first",          // an EOF where the answer starts
	"bad-ok",             // an OK packet whose lengths run past its end
	"short-err",          // an ERR packet of one byte
	"count-no-columns",   // a column count of 3, then the EOF at once
	"huge-count",         // a column count of 2^62, then one definition and EOF
	"count-trailing",     // a column-count packet with bytes after the count
	"truncated-column",   // a column definition cut in its middle
	"missing-eof",        // rows right after the definitions, without their EOF
	"lying-row",          // a row whose value announces 4096 bytes and holds 3
	"extra-value",        // a row with one value more than the columns
	"short-row",          // a row with one value less than the columns
	"bad-sequence",       // a row with a wrong sequence number
	"huge-length-close",  // a packet header announcing 16 MiB, 10 bytes, then close
	"close-mid-row",      // a row cut in its middle by a close
	"close-after-header", // the column definitions and EOF, then close
}

// PrepareScenarios are the malformed answers to COM_STMT_PREPARE ("badprep:NAME").
var PrepareScenarios = []string{
	"empty-packet",     // an empty packet
	"short-ok",         // an OK shorter than a prepare answer
	"missing-defs",     // announces 2 parameters and 1 column, sends only EOFs
	"truncated-column", // a column definition cut in its middle
	"close",            // closes the connection
}

// Server is a running fake server; Close (or the test's cleanup) stops it.
type Server struct {
	good   bool // ignore the markers: a well-behaved server
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Start listens on a loopback port; the test's cleanup closes the server.
func Start(t testing.TB) *Server { return start(t, false) }

// StartGood starts a server that ignores the markers and always answers well, for the
// shards of a scatter query that are not the broken one.
func StartGood(t testing.TB) *Server { return start(t, true) }

func start(t testing.TB, good bool) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{good: good, ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, closes every connection and waits for their goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	_ = s.ln.Close()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, nc)
				s.mu.Unlock()
				_ = nc.Close()
			}()
			c := &conn{w: wire.NewConn(nc, 4096), stmts: map[uint32]string{}, good: s.good}
			if c.handshake() == nil {
				c.serve()
			}
		}()
	}
}

// conn is one client connection of the fake server.
type conn struct {
	good   bool
	w      *wire.Conn
	stmts  map[uint32]string
	nextID uint32
}

// errClose ends a connection on purpose.
var errClose = errors.New("badserver: closing")

const serverCaps = mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_LONG_FLAG | mysql.CLIENT_CONNECT_WITH_DB |
	mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_SECURE_CONNECTION |
	mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_PS_MULTI_RESULTS |
	mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA

// handshake sends a greeting offering mysql_native_password and accepts any login.
func (c *conn) handshake() error {
	g := []byte{10}
	g = append(g, "10.11.0-MariaDB-badserver"...)
	g = append(g, 0)
	g = binary.LittleEndian.AppendUint32(g, 7)
	g = append(g, "abcdefgh"...)
	g = append(g, 0)
	g = binary.LittleEndian.AppendUint16(g, uint16(serverCaps&0xffff))
	g = append(g, 45)
	g = binary.LittleEndian.AppendUint16(g, wire.StatusAutocommit)
	g = binary.LittleEndian.AppendUint16(g, uint16(serverCaps>>16))
	g = append(g, 21)
	g = append(g, make([]byte, 10)...)
	g = append(g, "ijklmnopqrst"...)
	g = append(g, 0)
	g = append(g, "mysql_native_password"...)
	g = append(g, 0)
	if err := c.send(g); err != nil {
		return err
	}
	if _, err := c.w.ReadPacket(); err != nil {
		return err
	}
	return c.send(c.ok())
}

func (c *conn) ok() []byte {
	return wire.AppendOK(nil, wire.OK{Status: wire.StatusAutocommit})
}

// send writes packets and flushes them.
func (c *conn) send(pkts ...[]byte) error {
	for _, p := range pkts {
		if err := c.w.WritePacket(p); err != nil {
			return err
		}
	}
	return c.w.Flush()
}

// raw writes bytes as they are, bypassing the framing.
func (c *conn) raw(b []byte) error {
	if err := c.w.Flush(); err != nil {
		return err
	}
	_, err := c.w.NetConn().Write(b)
	return err
}

func (c *conn) serve() {
	for {
		c.w.ResetSeq()
		p, err := c.w.ReadPacket()
		if err != nil || len(p) == 0 {
			return
		}
		if err := c.command(p[0], bytes.Clone(p[1:])); err != nil {
			return
		}
	}
}

var (
	badMarker     = regexp.MustCompile(`\bbad:([a-z-]+)`)
	badPrepMarker = regexp.MustCompile(`\bbadprep:([a-z-]+)`)
)

func (c *conn) marker(re *regexp.Regexp, sql string) string {
	if c.good {
		return ""
	}
	if m := re.FindStringSubmatch(sql); m != nil {
		return m[1]
	}
	return ""
}

func (c *conn) command(cmd byte, data []byte) error {
	switch cmd {
	case mysql.COM_QUIT:
		return errClose
	case mysql.COM_QUERY:
		sql := string(data)
		if name := c.marker(badMarker, sql); name != "" {
			return c.garbage(name, false)
		}
		if isResultQuery(sql) {
			return c.result(false)
		}
		return c.send(c.ok())
	case mysql.COM_STMT_PREPARE:
		return c.prepare(string(data))
	case mysql.COM_STMT_EXECUTE:
		if len(data) < 4 {
			return errClose
		}
		sql, ok := c.stmts[binary.LittleEndian.Uint32(data)]
		if !ok {
			return c.send(wire.AppendErr(nil, errPacket(mysql.ER_UNKNOWN_STMT_HANDLER, "Unknown prepared statement handler")))
		}
		if name := c.marker(badMarker, sql); name != "" {
			return c.garbage(name, true)
		}
		if isResultQuery(sql) {
			return c.result(true)
		}
		return c.send(c.ok())
	case mysql.COM_STMT_CLOSE, mysql.COM_STMT_SEND_LONG_DATA:
		return nil
	case mysql.COM_INIT_DB, mysql.COM_PING, mysql.COM_RESET_CONNECTION, mysql.COM_STMT_RESET:
		return c.send(c.ok())
	default:
		return c.send(wire.AppendErr(nil, errPacket(mysql.ER_UNKNOWN_COM_ERROR, "Unknown command")))
	}
}

func isResultQuery(sql string) bool {
	s := strings.ToUpper(strings.TrimSpace(sql))
	return strings.HasPrefix(s, "SELECT") || strings.HasPrefix(s, "SHOW") || strings.HasPrefix(s, "(")
}

// column is the one column of every result: v VARCHAR(255).
func column() []byte {
	return wire.AppendColumnDef(nil, wire.Column{Schema: "d", Table: "t", OrgTable: "t", Name: "v", OrgName: "v",
		Charset: 45, Length: 1020, Type: mysql.MYSQL_TYPE_VAR_STRING})
}

func eof() []byte { return wire.AppendEOF(nil, 0, wire.StatusAutocommit) }

// row is the value "1" in the text or binary protocol.
func row(bin bool) []byte {
	if bin {
		return []byte{0x00, 0x00, 1, '1'}
	}
	return []byte{1, '1'}
}

// result answers with one column and one row.
func (c *conn) result(bin bool) error {
	return c.send([]byte{1}, column(), eof(), row(bin), eof())
}

// prepare answers COM_STMT_PREPARE: one column, as many parameters as the text has '?'.
func (c *conn) prepare(sql string) error {
	switch c.marker(badPrepMarker, sql) {
	case "":
	case "empty-packet":
		return c.send([]byte{})
	case "short-ok":
		return c.send([]byte{0x00, 1, 0, 0, 0})
	case "missing-defs":
		return c.send(prepareOK(1, 1, 2), eof(), eof())
	case "truncated-column":
		return c.send(prepareOK(1, 1, 0), column()[:9], eof())
	default:
		return errClose
	}
	c.nextID++
	c.stmts[c.nextID] = sql
	params := strings.Count(sql, "?")
	pkts := [][]byte{prepareOK(c.nextID, 1, params)}
	if params > 0 {
		for range params {
			pkts = append(pkts, wire.AppendColumnDef(nil, wire.Column{Name: "?", Charset: 63, Type: mysql.MYSQL_TYPE_VAR_STRING}))
		}
		pkts = append(pkts, eof())
	}
	pkts = append(pkts, column(), eof())
	return c.send(pkts...)
}

func prepareOK(id uint32, cols, params int) []byte {
	b := []byte{0x00}
	b = binary.LittleEndian.AppendUint32(b, id)
	b = binary.LittleEndian.AppendUint16(b, uint16(cols))
	b = binary.LittleEndian.AppendUint16(b, uint16(params))
	return append(b, 0, 0, 0)
}

// garbage sends the malformed answer name; bin selects binary-protocol rows.
func (c *conn) garbage(name string, bin bool) error {
	switch name {
	case "empty-packet":
		return c.send([]byte{})
	case "eof-first":
		return c.send(eof())
	case "bad-ok":
		return c.send([]byte{0x00, 0xfe, 1, 2})
	case "short-err":
		return c.send([]byte{0xff})
	case "count-no-columns":
		return c.send([]byte{3}, eof(), row(bin), eof())
	case "huge-count":
		return c.send([]byte{0xfe, 0, 0, 0, 0, 0, 0, 0, 0x40}, column(), eof(), row(bin), eof())
	case "count-trailing":
		return c.send([]byte{1, 'x', 'y'}, column(), eof(), row(bin), eof())
	case "truncated-column":
		return c.send([]byte{1}, column()[:9], eof(), row(bin), eof())
	case "missing-eof":
		return c.send([]byte{1}, column(), row(bin), eof())
	case "lying-row":
		r := []byte{0xfc, 0x00, 0x10, 'a', 'b', 'c'}
		if bin {
			r = append([]byte{0x00, 0x00}, r...)
		}
		return c.send([]byte{1}, column(), eof(), row(bin), r, eof())
	case "extra-value":
		return c.send([]byte{1}, column(), eof(), append(row(bin), 1, '2'), eof())
	case "short-row":
		return c.send([]byte{2}, column(), column(), eof(), row(bin), eof())
	case "bad-sequence":
		if err := c.send([]byte{1}, column(), eof()); err != nil {
			return err
		}
		c.w.SetSeq(c.w.Seq() + 7)
		return c.send(row(bin), eof())
	case "huge-length-close":
		_ = c.raw(append([]byte{0xff, 0xff, 0xff, 1}, make([]byte, 10)...))
		return errClose
	case "close-mid-row":
		if err := c.send([]byte{1}, column(), eof(), row(bin)); err != nil {
			return err
		}
		_ = c.raw([]byte{20, 0, 0, c.w.Seq(), 18, 'a', 'b'})
		return errClose
	case "close-after-header":
		_ = c.send([]byte{1}, column(), eof())
		return errClose
	default:
		return c.send(wire.AppendErr(nil, errPacket(mysql.ER_UNKNOWN_ERROR, "badserver: unknown scenario "+name)))
	}
}

func errPacket(code uint16, msg string) *sqlerr.Error { return sqlerr.New(code, "%s", msg) }
