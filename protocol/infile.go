package protocol

import (
	"crypto/tls"
	"errors"
	"time"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// ReadFilePacket reads the next packet of the file a client sends after a LOCAL INFILE
// request (0xFB) was written to it: what was written is flushed first, the read is bounded
// by the idle timeout and each packet by max_allowed_packet. An empty packet ends the file.
// A failed read is remembered like a failed write: the client connection is closed after
// the command, without an answer (a packet too large is answered with 1153 first).
func (r *resultWriter) ReadFilePacket() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.err = r.w.Flush(); r.err != nil {
		return nil, r.err
	}
	nc := r.w.NetConn()
	_ = nc.SetReadDeadline(time.Now().Add(r.idle))
	p, err := r.w.ReadPacket()
	_ = nc.SetReadDeadline(time.Time{})
	if err != nil {
		if errors.Is(err, wire.ErrPacketTooLarge) {
			_ = r.w.WritePacket(wire.AppendErr(nil, sqlerr.New(sqlerr.ErNetPacketTooLarge, "Got a packet bigger than 'max_allowed_packet' bytes")))
			_ = r.w.Flush()
			r.tooLarge = true
		}
		r.err = err
		return nil, err
	}
	return p, nil
}

// tlsVersion is the client's TLS protocol version as MariaDB names it in Ssl_version, or ""
// without TLS.
func (c *conn) tlsVersion() string {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return ""
	}
	switch tc.ConnectionState().Version {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return ""
}

// tlsCipher is the client's TLS cipher suite by its OpenSSL name, as MariaDB reports it in
// Ssl_cipher (TLS 1.3 suites have the same name in both), or "" without TLS.
func (c *conn) tlsCipher() string {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return ""
	}
	id := tc.ConnectionState().CipherSuite
	if name, ok := opensslCiphers[id]; ok {
		return name
	}
	return tls.CipherSuiteName(id)
}

// opensslCiphers maps the TLS 1.2 suites Go implements to OpenSSL's names.
var opensslCiphers = map[uint16]string{
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:         "ECDHE-RSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:         "ECDHE-RSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:       "ECDHE-ECDSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:       "ECDHE-ECDSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:   "ECDHE-RSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA:            "ECDHE-RSA-AES128-SHA",
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA:            "ECDHE-RSA-AES256-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA:          "ECDHE-ECDSA-AES128-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA:          "ECDHE-ECDSA-AES256-SHA",
	tls.TLS_RSA_WITH_AES_128_GCM_SHA256:               "AES128-GCM-SHA256",
	tls.TLS_RSA_WITH_AES_256_GCM_SHA384:               "AES256-GCM-SHA384",
	tls.TLS_RSA_WITH_AES_128_CBC_SHA:                  "AES128-SHA",
	tls.TLS_RSA_WITH_AES_256_CBC_SHA:                  "AES256-SHA",
}
