package router

import (
	"strings"

	"github.com/shardproxy/shardproxy/wire"
)

// The Ssl_* session status variables describe the TLS session of the connection that asks:
// through the proxy that is the client's session with the proxy, not the backend
// connection's. SHOW [SESSION] STATUS is answered by a backend; sslStatusRows replaces the
// values of the session-specific Ssl_* rows in its answer with the client's own.

// sslSessionVars returns the values of the session-specific Ssl_* variables of the client
// info describes, by lower-cased name (MariaDB reports them empty, or 0, on a connection
// without TLS).
func (info SessionInfo) sslSessionVars() map[string]string {
	cipherList := info.TLSCipher // Go offers no list of a session's usable ciphers: the one in use
	return map[string]string{
		"ssl_cipher":          info.TLSCipher,
		"ssl_cipher_list":     cipherList,
		"ssl_version":         info.TLSVersion,
		"ssl_sessions_reused": "0",
	}
}

// sslStatusRows wraps the writer of a SHOW [SESSION] STATUS answer (text protocol: two
// columns, Variable_name and Value) for the client info describes.
func (info SessionInfo) sslStatusRows(w wire.PacketWriter) wire.PacketWriter {
	return &sslRows{w: w, vals: info.sslSessionVars()}
}

type sslRows struct {
	w    wire.PacketWriter
	vals map[string]string
	t    wire.ResultTracker
	buf  []byte
}

// WritePacket passes p on, a row of a two-column result (SHOW STATUS) with the client's
// own value.
func (r *sslRows) WritePacket(p []byte) error {
	if r.t.Next(p) == wire.PartRow && r.t.Columns() == 2 {
		return r.w.WritePacket(r.row(p))
	}
	return r.w.WritePacket(p)
}

// row returns the row with the client's value when it names a session Ssl_* variable; a
// row it cannot decode goes through unchanged.
func (r *sslRows) row(p []byte) []byte {
	name, null, n := wire.LenencString(p)
	if n == 0 || null {
		return p
	}
	v, ok := r.vals[strings.ToLower(string(name))]
	if !ok {
		return p
	}
	if _, _, m := wire.LenencString(p[n:]); m == 0 || n+m != len(p) {
		return p
	}
	r.buf = append(r.buf[:0], p[:n]...)
	r.buf = wire.AppendLenencString(r.buf, v)
	return r.buf
}
