package router

import (
	"testing"

	"github.com/shardproxy/shardproxy/wire"
)

type packetLog [][]byte

func (l *packetLog) WritePacket(p []byte) error {
	*l = append(*l, append([]byte(nil), p...))
	return nil
}

// TestSslStatusRows: the session Ssl_* rows of a SHOW STATUS answer carry the client's TLS
// session; every other packet passes unchanged.
func TestSslStatusRows(t *testing.T) {
	row := func(name, value string) []byte {
		return wire.AppendLenencString(wire.AppendLenencString(nil, name), value)
	}
	info := SessionInfo{TLSCipher: "ECDHE-RSA-AES128-GCM-SHA256", TLSVersion: "TLSv1.2"}
	in := [][]byte{
		{2}, []byte("coldef1"), []byte("coldef2"), wire.AppendEOF(nil, 0, 0),
		row("Ssl_accepts", "7"), row("Ssl_cipher", ""), row("SSL_VERSION", "TLSv1.3"), row("Ssl_cipher_list", "A:B"),
		{0x05, 'S', 's'}, // malformed: passes unchanged
		wire.AppendEOF(nil, 0, 0),
	}
	want := [][]byte{
		in[0], in[1], in[2], in[3],
		row("Ssl_accepts", "7"), row("Ssl_cipher", "ECDHE-RSA-AES128-GCM-SHA256"), row("SSL_VERSION", "TLSv1.2"), row("Ssl_cipher_list", "ECDHE-RSA-AES128-GCM-SHA256"),
		in[8], in[9],
	}
	var out packetLog
	w := info.sslStatusRows(&out)
	for _, p := range in {
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if len(out) != len(want) {
		t.Fatalf("%d packets out, want %d", len(out), len(want))
	}
	for i := range want {
		if string(out[i]) != string(want[i]) {
			t.Errorf("packet %d: %q, want %q", i, out[i], want[i])
		}
	}
}
