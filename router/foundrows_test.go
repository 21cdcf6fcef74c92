package router

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/wire"
)

// TestFoundRowsWriterInfoLength: the matched count read from the OK packet of an UPDATE as
// MariaDB sends it (the info a length-encoded string), whatever the info's length. An info
// of 48-57 bytes has a length byte that is an ASCII digit ('0'-'9'); read with the text,
// it made four numbers of three and the client got the changed count. Only the affected
// rows change on the way to the client.
func TestFoundRowsWriterInfoLength(t *testing.T) {
	for _, matched := range []uint64{3, 300, 3000000, 300000000000, 3000000000000} {
		info := fmt.Sprintf("Rows matched: %d  Changed: 2000000  Warnings: 0", matched) // 46, 48, 52, 57, 58 bytes
		for _, state := range []string{"", "\x10\x00\x0e\x0aautocommit\x02ON"} {
			status := []byte{0x22, 0x00}
			if state != "" {
				status[1] = 0x40 // SERVER_SESSION_STATE_CHANGED: session-state info follows the info
			}
			packet := func(affected []byte) []byte {
				p := append([]byte{wire.OKHeader}, affected...)
				p = append(p, 0x00) // last insert id
				p = append(p, status...)
				p = append(p, 0x00, 0x00) // warnings
				p = append(p, byte(len(info)))
				return append(append(p, info...), state...)
			}
			var k engine.Collector
			f := &foundRowsWriter{w: &k, kind: rowsUpdate}
			if err := f.WritePacket(packet([]byte{0xfd, 0x80, 0x84, 0x1e})); err != nil { // 2000000 changed
				t.Fatal(err)
			}
			if !f.found || f.n != matched {
				t.Errorf("%d-byte info, state %q: found %v, n %d; want %d", len(info), state, f.found, f.n, matched)
			}
			want := packet(wire.AppendLenencInt(nil, matched))
			if len(k.Pkts) != 1 || !bytes.Equal(k.Pkts[0], want) {
				t.Errorf("%d-byte info, state %q: the client got\n% x\nwant\n% x", len(info), state, k.Pkts, want)
			}
		}
	}
}
