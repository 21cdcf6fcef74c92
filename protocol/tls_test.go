package protocol

import (
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// pipelinedConn sends first together with the first Write, in one syscall: a client that
// writes its SSLRequest and its TLS ClientHello back to back (go-sql-driver does, and on a
// busy host both arrive in one read).
type pipelinedConn struct {
	net.Conn
	first []byte
}

func (p *pipelinedConn) Write(b []byte) (int, error) {
	if p.first == nil {
		return p.Conn.Write(b)
	}
	all := append(p.first, b...)
	p.first = nil
	if _, err := p.Conn.Write(all); err != nil {
		return 0, err
	}
	return len(b), nil
}

// readTap reports the size of every read the server makes on its connections.
type readTap struct {
	net.Listener
	reads chan int
}

type readTapConn struct {
	net.Conn
	reads chan int
}

func (l *readTap) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &readTapConn{Conn: nc, reads: l.reads}, nil
}

func (c *readTapConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		select {
		case c.reads <- n:
		default:
		}
	}
	return n, err
}

// tlsLogin upgrades to TLS and logs in. Unless pipelined, the ClientHello is sent only once
// the server has read the SSLRequest; pipelined, both go in one write. It reports whether
// the TLS handshake succeeded.
func tlsLogin(t *testing.T, pipelined bool) bool {
	t.Helper()
	reads := make(chan int, 64)
	ts := startServerOn(t, Options{HandshakeTimeout: time.Second, TLS: &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}},
		func(ln net.Listener) net.Listener { return &readTap{Listener: ln, reads: reads} })
	c := dialRaw(t, ts.addr)
	sslRequest := frameOf(1, handshakeResponse41{caps: clientCaps | capSSL, collation: 45}.encode()[:32])
	var nc net.Conn = c.nc
	if pipelined {
		nc = &pipelinedConn{Conn: c.nc, first: sslRequest}
	} else {
		if _, err := c.nc.Write(sslRequest); err != nil {
			t.Fatal(err)
		}
		for total := 0; total < len(sslRequest); {
			total += <-reads
		}
	}
	tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Logf("TLS handshake: %v", err)
		return false
	}
	c = newRawOver(t, c, tc)
	c.w.SetSeq(2) // the handshake response follows the SSLRequest
	r := c.nativeResponse(nativeUser, password)
	r.caps |= capSSL
	c.write(r.encode())
	c.expectOK()
	c.ping()
	info := ts.h.session(t, 0).info
	if !info.TLS || info.Capabilities&capSSL == 0 {
		t.Errorf("ConnInfo after a TLS login: TLS %v, capabilities %#x", info.TLS, info.Capabilities)
	}
	return true
}

func TestTLSLogin(t *testing.T) {
	if !tlsLogin(t, false) {
		t.Fatal("TLS upgrade failed")
	}
}

// TestTLSPipelinedClientHello: a ClientHello that arrives in the same read as the SSLRequest
// (go-sql-driver does this) must reach the TLS layer from the read buffer.
func TestTLSPipelinedClientHello(t *testing.T) {
	if !tlsLogin(t, true) {
		t.Fatal("TLS upgrade failed when the ClientHello arrived with the SSLRequest")
	}
}
