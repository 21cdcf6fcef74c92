package engine

import (
	"context"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// ClientFile reads the file a client sends after a LOCAL INFILE request (the protocol's
// result writer implements it); an empty packet ends the file.
type ClientFile interface {
	ReadFilePacket() ([]byte, error)
}

// FileCarrier is a PacketWriter that can hand over the client's file for a LOAD DATA LOCAL
// INFILE whose answer is relayed to it; a writer without one refuses the backend's request.
type FileCarrier interface {
	ClientFile() (ClientFile, bool)
}

// relayLocalFile answers the backend's LOCAL INFILE request req: it forwards the request to
// the client and the client's file, packet by packet, to the backend, ending with the empty
// packet. If the backend fails mid-file the rest of the file is still read (and dropped), so
// the client connection stays in step; if the client fails, the backend connection is
// broken off so that the statement does not commit a partial file.
func relayLocalFile(ctx context.Context, c Conn, w wire.PacketWriter, req []byte) error {
	var file ClientFile
	fc, ok := w.(FileCarrier)
	if ok {
		file, ok = fc.ClientFile()
	}
	if !ok || ctx.Err() != nil {
		c.State().MarkBroken()
		return sqlerr.NotSupported("LOAD DATA LOCAL INFILE here (only as a statement of its own, into a table on one shard)")
	}
	if err := w.WritePacket(req); err != nil {
		c.State().MarkBroken()
		return err
	}
	bw := c.Wire()
	var berr error
	for {
		p, err := file.ReadFilePacket()
		if err != nil {
			c.State().MarkBroken()
			return err
		}
		if berr == nil {
			if berr = bw.WritePacket(p); berr == nil && len(p) == 0 {
				berr = bw.Flush()
			}
			if berr != nil {
				berr = IOErr(ctx, c, berr)
			}
		}
		if len(p) == 0 {
			return berr
		}
	}
}
