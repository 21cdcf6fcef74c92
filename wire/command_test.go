package wire_test

import (
	"bytes"
	"testing"

	"github.com/shardproxy/shardproxy/wire"
)

// TestWriteCommand: a command written from its byte and data frames exactly as the same
// payload through WritePacket, at the sizes where packets split.
func TestWriteCommand(t *testing.T) {
	for _, n := range []int{0, 10, wire.MaxPayload - 2, wire.MaxPayload - 1, wire.MaxPayload, wire.MaxPayload + 7} {
		data := bytes.Repeat([]byte{'x'}, n)
		want, got := newFake(nil), newFake(nil)
		wc := wire.NewConn(want, 4096)
		if err := wc.WritePacket(append([]byte{3}, data...)); err != nil || wc.Flush() != nil {
			t.Fatal(err)
		}
		gc := wire.NewConn(got, 4096)
		if err := gc.WriteCommand(3, data); err != nil || gc.Flush() != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.w.Bytes(), want.w.Bytes()) {
			t.Errorf("%d bytes of data: WriteCommand wrote %d bytes, WritePacket %d (or they differ)", n, got.w.Len(), want.w.Len())
		}
		str := newFake(nil)
		sc := wire.NewConn(str, 4096)
		if err := sc.WriteCommandString(3, string(data)); err != nil || sc.Flush() != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(str.w.Bytes(), want.w.Bytes()) {
			t.Errorf("%d bytes of data: WriteCommandString differs from WritePacket", n)
		}
	}
}
