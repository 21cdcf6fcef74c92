package protocol

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// serverCaps are the capabilities offered to clients. Not offered, on purpose:
// CLIENT_DEPRECATE_EOF and CLIENT_SESSION_TRACK (backend packets are relayed as they are,
// and backend connections use neither), compression, query attributes. LOCAL INFILE is
// offered: the router relays a backend's file request to the client (see ReadFilePacket).
const serverCaps = mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_LONG_FLAG | mysql.CLIENT_CONNECT_WITH_DB |
	mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_INTERACTIVE | mysql.CLIENT_TRANSACTIONS |
	mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS |
	mysql.CLIENT_PS_MULTI_RESULTS | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS |
	mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_IGNORE_SPACE | mysql.CLIENT_NO_SCHEMA |
	mysql.CLIENT_FOUND_ROWS | mysql.CLIENT_LOCAL_FILES

// defaultCollation is announced in the handshake: utf8mb4_general_ci.
const defaultCollation = 45

// errHandshake marks a login that failed; the client has been told why.
var errHandshake = errors.New("protocol: handshake failed")

type handshakeResponse struct {
	caps      uint32
	collation uint8
	user      string
	auth      []byte
	db        string
	plugin    string
	attrs     map[string]string
}

// handshake runs the login: greeting, optional TLS, credentials, the initial database.
func (c *conn) handshake() error {
	_ = c.nc.SetDeadline(time.Now().Add(c.srv.opts.HandshakeTimeout))
	defer func() { _ = c.nc.SetDeadline(time.Time{}) }()

	scramble, err := newScramble()
	if err != nil {
		return err
	}
	caps := serverCaps
	if c.srv.opts.TLS != nil {
		caps |= mysql.CLIENT_SSL
	}
	if err := c.w.WritePacket(c.greeting(caps, scramble)); err != nil {
		return err
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	p, err := c.readAuthPacket()
	if err != nil {
		return fmt.Errorf("protocol: read handshake response: %w", err)
	}
	if len(p) == 32 && binary.LittleEndian.Uint32(p)&mysql.CLIENT_SSL != 0 {
		if p, err = c.startTLS(); err != nil {
			return err
		}
	}
	resp, err := parseHandshakeResponse(p)
	if err != nil {
		return c.fail(sqlerr.New(sqlerr.ErMalformedPacket, "Malformed handshake response"), err)
	}
	resp.caps &= caps
	if resp.caps&mysql.CLIENT_PROTOCOL_41 == 0 {
		return c.fail(sqlerr.New(sqlerr.ErNotSupportedYet, "This version of shardproxy doesn't yet support 'clients without CLIENT_PROTOCOL_41'"), nil)
	}
	if err := c.authenticate(resp, scramble); err != nil {
		return err
	}
	c.info = ConnInfo{
		ID: c.id, User: resp.user, RemoteAddr: c.nc.RemoteAddr(), Capabilities: resp.caps,
		Collation: resp.collation, Attributes: resp.attrs, TLS: c.isTLS(), TLSVersion: c.tlsVersion(), TLSCipher: c.tlsCipher(),
	}
	c.multi = resp.caps&mysql.CLIENT_MULTI_STATEMENTS != 0
	c.log = c.log.With("user", resp.user)
	sess, err := c.srv.handler.NewSession(c.ctx, c.info)
	if err != nil {
		return c.fail(toSQLError(err), err)
	}
	c.sess = sess
	c.mu.Lock()
	c.user, c.session = resp.user, sess
	c.mu.Unlock()
	if resp.db != "" {
		if err := sess.UseDB(c.ctx, resp.db); err != nil {
			return c.fail(toSQLError(err), err)
		}
	}
	if err := c.w.WritePacket(wire.AppendOK(nil, wire.OK{Status: sess.Status()})); err != nil {
		return err
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	c.w.Resize(connBufSize)
	c.w.MaxPacket = c.srv.opts.MaxAllowedPacket
	return nil
}

// readAuthPacket reads a packet of the login. One larger than a handshake needs is refused
// with ER_HANDSHAKE_ERROR, as MySQL does, without reading it.
func (c *conn) readAuthPacket() ([]byte, error) {
	p, err := c.w.ReadPacket()
	if errors.Is(err, wire.ErrPacketTooLarge) {
		return nil, c.fail(sqlerr.New(sqlerr.ErHandshake, "Bad handshake"), err)
	}
	return p, err
}

func (c *conn) isTLS() bool {
	_, ok := c.nc.(*tls.Conn)
	return ok
}

// fail tells the client why the login failed and returns errHandshake.
func (c *conn) fail(e *sqlerr.Error, cause error) error {
	_ = c.w.WritePacket(wire.AppendErr(nil, e))
	_ = c.w.Flush()
	if cause != nil {
		return fmt.Errorf("%w: %v: %w", errHandshake, e, cause)
	}
	return fmt.Errorf("%w: %v", errHandshake, e)
}

func newScramble() ([]byte, error) {
	s := make([]byte, 20)
	if _, err := rand.Read(s); err != nil {
		return nil, err
	}
	// Printable, NUL-free bytes: some clients treat the scramble as a C string.
	for i := range s {
		s[i] = s[i]%94 + 33
	}
	return s, nil
}

// greeting builds the Protocol::HandshakeV10 packet.
func (c *conn) greeting(caps uint32, scramble []byte) []byte {
	b := make([]byte, 0, 128)
	b = append(b, 10)
	b = append(b, c.srv.opts.ServerVersion...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, c.id)
	b = append(b, scramble[:8]...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps))
	b = append(b, defaultCollation)
	b = binary.LittleEndian.AppendUint16(b, wire.StatusAutocommit)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps>>16))
	b = append(b, byte(len(scramble)+1))
	b = append(b, make([]byte, 10)...)
	b = append(b, scramble[8:]...)
	b = append(b, 0)
	b = append(b, PluginNative...)
	return append(b, 0)
}

// startTLS upgrades the connection after an SSLRequest and reads the real response.
func (c *conn) startTLS() ([]byte, error) {
	if c.srv.opts.TLS == nil {
		return nil, c.fail(sqlerr.New(sqlerr.ErNotSupportedYet, "TLS is not configured on this proxy"), nil)
	}
	// The client may have sent its ClientHello right behind the SSLRequest: bytes the
	// packet reader already buffered are the start of the TLS stream.
	raw := c.nc
	if early := c.w.TakeBuffered(); len(early) > 0 {
		raw = &prefixedConn{Conn: c.nc, r: io.MultiReader(bytes.NewReader(early), c.nc)}
	}
	tc := tls.Server(raw, c.srv.opts.TLS)
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("protocol: TLS handshake: %w", err)
	}
	c.nc = tc
	c.w.Replace(&deadlineConn{Conn: tc, timeout: c.srv.opts.WriteTimeout})
	p, err := c.readAuthPacket()
	if err != nil {
		return nil, fmt.Errorf("protocol: read handshake response over TLS: %w", err)
	}
	return p, nil
}

// prefixedConn reads r (buffered bytes, then the connection) and writes to the connection.
type prefixedConn struct {
	net.Conn
	r io.Reader
}

func (p *prefixedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

func parseHandshakeResponse(p []byte) (handshakeResponse, error) {
	var r handshakeResponse
	if len(p) < 32 {
		return r, wire.ErrMalformed
	}
	r.caps = binary.LittleEndian.Uint32(p)
	r.collation = p[8]
	rest := p[32:]
	user, rest, ok := cutNul(rest)
	if !ok {
		return r, wire.ErrMalformed
	}
	r.user = string(user)
	switch {
	case r.caps&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0:
		s, _, n := wire.LenencString(rest)
		if n == 0 {
			return r, wire.ErrMalformed
		}
		r.auth, rest = s, rest[n:]
	case r.caps&mysql.CLIENT_SECURE_CONNECTION != 0:
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return r, wire.ErrMalformed
		}
		r.auth, rest = rest[1:1+int(rest[0])], rest[1+int(rest[0]):]
	default:
		r.auth, rest, _ = cutNul(rest)
	}
	r.auth = bytes.Clone(r.auth)
	if r.caps&mysql.CLIENT_CONNECT_WITH_DB != 0 && len(rest) > 0 {
		db, tail, _ := cutNul(rest)
		r.db, rest = string(db), tail
	}
	if r.caps&mysql.CLIENT_PLUGIN_AUTH != 0 && len(rest) > 0 {
		pl, tail, _ := cutNul(rest)
		r.plugin, rest = string(pl), tail
	}
	if r.caps&mysql.CLIENT_CONNECT_ATTRS != 0 && len(rest) > 0 {
		r.attrs = parseAttrs(rest)
	}
	return r, nil
}

func cutNul(b []byte) (before, after []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return b, nil, false
	}
	return b[:i], b[i+1:], true
}

func parseAttrs(b []byte) map[string]string {
	total, n := wire.LenencInt(b)
	if n == 0 || uint64(len(b)-n) < total {
		return nil
	}
	b = b[n : n+int(total)]
	attrs := make(map[string]string)
	for len(b) > 0 {
		k, _, n1 := wire.LenencString(b)
		if n1 == 0 {
			break
		}
		v, _, n2 := wire.LenencString(b[n1:])
		if n2 == 0 {
			break
		}
		attrs[string(k)] = string(v)
		b = b[n1+n2:]
	}
	return attrs
}

// authenticate checks the client's credentials, switching plugin when the user's differs
// from the one the client used.
func (c *conn) authenticate(r handshakeResponse, scramble []byte) error {
	denied := func(cause error) error {
		host, _, _ := net.SplitHostPort(c.nc.RemoteAddr().String())
		using := "NO"
		if len(r.auth) > 0 {
			using = "YES"
		}
		return c.fail(sqlerr.New(sqlerr.ErAccessDenied, "Access denied for user '%s'@'%s' (using password: %s)", r.user, host, using), cause)
	}
	cred, ok := c.srv.users.LookupUser(r.user)
	if !ok {
		return denied(nil)
	}
	v, err := parseVerifier(cred.Hash)
	if err != nil {
		return denied(err)
	}
	auth := r.auth
	if r.plugin != v.plugin {
		if auth, err = c.switchAuth(v.plugin, scramble); err != nil {
			return err
		}
		r.auth = auth
	}
	switch v.plugin {
	case PluginNative:
		if !v.checkNative(scramble, auth) {
			return denied(nil)
		}
		return nil
	default:
		return c.authSha2(r, v, cred.Hash, scramble, denied)
	}
}

// switchAuth sends an AuthSwitchRequest and returns the client's new auth data.
func (c *conn) switchAuth(plugin string, scramble []byte) ([]byte, error) {
	b := []byte{wire.EOFHeader}
	b = append(b, plugin...)
	b = append(b, 0)
	b = append(b, scramble...)
	b = append(b, 0)
	if err := c.w.WritePacket(b); err != nil {
		return nil, err
	}
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	p, err := c.readAuthPacket()
	if err != nil {
		return nil, fmt.Errorf("protocol: read auth switch response: %w", err)
	}
	return bytes.Clone(p), nil
}

// authSha2 runs caching_sha2_password: the fast path when the password's digest is cached,
// otherwise full authentication with the password in clear over TLS or RSA-encrypted.
func (c *conn) authSha2(r handshakeResponse, v verifier, hash string, scramble []byte, denied func(error) error) error {
	if len(r.auth) == 0 || (len(r.auth) == 1 && r.auth[0] == 0) {
		return denied(nil) // empty password; hashes are never of the empty password
	}
	if stage2, ok := c.srv.sha2.get(r.user, hash); ok {
		if !checkSha2Fast(stage2, scramble, r.auth) {
			return denied(nil)
		}
		return c.w.WritePacket([]byte{0x01, 0x03}) // fast_auth_success; OK follows
	}
	if err := c.w.WritePacket([]byte{0x01, 0x04}); err != nil { // perform_full_authentication
		return err
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	p, err := c.readAuthPacket()
	if err != nil {
		return fmt.Errorf("protocol: read sha2 full auth: %w", err)
	}
	var password []byte
	switch {
	case c.isTLS() || (isLoopback(c.nc.RemoteAddr()) && !(len(p) == 1 && p[0] == 0x02)):
		// Cleartext is accepted over TLS, and over loopback, which never leaves the host
		// (MySQL accepts it over a unix socket for the same reason; MariaDB's client sends it
		// there).
		password = bytes.TrimRight(p, "\x00")
	case len(p) == 1 && p[0] == 0x02: // request public key
		key, pemKey, err := c.srv.rsa.get()
		if err != nil {
			return fmt.Errorf("protocol: RSA key: %w", err)
		}
		if err := c.w.WritePacket(append([]byte{0x01}, pemKey...)); err != nil {
			return err
		}
		if err := c.w.Flush(); err != nil {
			return err
		}
		enc, err := c.readAuthPacket()
		if err != nil {
			return fmt.Errorf("protocol: read encrypted password: %w", err)
		}
		if password, err = decryptPassword(key, scramble, enc); err != nil {
			return denied(err)
		}
	default:
		return c.fail(sqlerr.New(sqlerr.ErAccessDenied,
			"Authentication requires secure connection: use TLS or let the client request the server's RSA public key"), nil)
	}
	if !v.checkPlain(password) {
		return denied(nil)
	}
	c.srv.sha2.put(r.user, hash, password)
	return nil
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
