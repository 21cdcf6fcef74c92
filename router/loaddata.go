package router

import (
	"context"
	"regexp"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// LOAD DATA LOCAL INFILE: the backend asks for the file with a LOCAL INFILE request (0xFB +
// file name); the proxy forwards the request to the client and relays the client's file
// packets, one at a time (each bounded by max_allowed_packet, never the whole file in
// memory), and the empty packet that ends the file, to the backend; the backend's OK or ERR
// then reaches the client like any statement's answer.
//
// A table spread over several shards (sharded, or broadcast in a database of several
// shards) is loaded by every shard at once, the proxy sending each its part of the file,
// atomically (loadsplit.go).

// infileWriter is the PacketWriter a LOAD DATA LOCAL statement's answer is relayed to: it
// carries the client's file to the engine's relay (engine.FileCarrier).
type infileWriter struct {
	wire.PacketWriter
	file engine.ClientFile
}

// ClientFile hands the client's file to the engine (engine.FileCarrier).
func (x *infileWriter) ClientFile() (engine.ClientFile, bool) { return x.file, true }

// ClientFile passes on the client's file of the writer behind the cutoff, if it has one.
func (c *cutoff) ClientFile() (engine.ClientFile, bool) {
	if fc, ok := c.w.(engine.FileCarrier); ok {
		return fc.ClientFile()
	}
	return nil, false
}

// erLoadInfileDisabled is MariaDB's ER_LOAD_INFILE_CAPABILITY_DISABLED, what it answers a
// LOAD DATA LOCAL from a client that did not offer CLIENT_LOCAL_FILES.
const erLoadInfileDisabled = 4166

// loadDataLocal runs LOAD DATA LOCAL INFILE.
func (s *Session) loadDataLocal(ctx context.Context, snap *rules.Snapshot, n *ast.LoadDataStmt, text string, more bool, w wire.PacketWriter) error {
	if !s.info.LocalFiles {
		return sqlerr.New(erLoadInfileDisabled, "The used command is not allowed because the MariaDB server or client has disabled the local infile capability")
	}
	file, ok := w.(engine.ClientFile)
	if !ok {
		return sqlerr.NotSupported("LOAD DATA LOCAL INFILE here (only as a statement of its own)")
	}
	pl := s.planner(snap)
	if t := pl.LoadTarget(snap, n); t != nil {
		return s.loadSpread(ctx, snap, t, n, text, file, more, w) // loadsplit.go
	}
	pp, err := pl.Plan(snap, n, text, nil)
	if err != nil {
		return err
	}
	p, ok := plan.RouteOf(pp)
	if !ok {
		return sqlerr.NotSupported("LOAD DATA LOCAL INFILE into a table spread over several shards in this form")
	}
	sql := p.SQL
	if sql != text {
		sql = keepDuplicateHandling(n, text, sql)
	}
	if err := s.checkWrite(ctx, p.Shard); err != nil {
		return err
	}
	return lostWrite(s.run(ctx, snap, p.Shard, sql, more, &infileWriter{PacketWriter: w, file: file}))
}

// explicitIgnore matches a LOAD DATA LOCAL whose text asks for IGNORE itself.
var explicitIgnore = regexp.MustCompile(`(?is)^\s*LOAD\s+DATA\s+(?:LOW_PRIORITY\s+|CONCURRENT\s+)?LOCAL\s+INFILE\s+(?:'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")\s+IGNORE\s`)

// keepDuplicateHandling undoes what the parser adds to a rewritten LOAD DATA LOCAL: it
// reads LOCAL without REPLACE or IGNORE as IGNORE, and restoring writes that IGNORE out,
// which would turn the server's errors for bad rows into warnings. Without an IGNORE in the
// client's text, the restored one is dropped.
func keepDuplicateHandling(n *ast.LoadDataStmt, text, restored string) string {
	if n.OnDuplicate != ast.OnDuplicateKeyHandlingIgnore || explicitIgnore.MatchString(text) {
		return restored
	}
	const ignore = " IGNORE INTO TABLE "
	// The first occurrence after the file name (which may itself hold the words).
	for from := 0; ; {
		i := strings.Index(restored[from:], ignore)
		if i < 0 {
			return restored
		}
		i += from
		if explicitIgnore.MatchString(restored[:i+len(" IGNORE ")]) {
			return restored[:i] + restored[i+len(" IGNORE"):]
		}
		from = i + 1
	}
}
