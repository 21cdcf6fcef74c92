package router

import (
	"context"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// EXPLAIN / DESCRIBE / ANALYZE of a statement as a prepared statement (COM_STMT_PREPARE).
// Which shards run the statement depends on its parameters, so the answer is built at each
// execution as for the plain query (explain_stmt.go): the bound values are written into
// the statement as literals, the shards that would run it are asked, and their text rows are
// sent in the binary protocol. At prepare time the statement is planned without its values
// (so a refused statement is refused with its own reason) and the EXPLAIN of the shard
// statement that describes it is prepared on that shard for the metadata: parameter and
// column definitions, with a first column `shard` when the plan runs on several shards.

// prepareExplain prepares r, the EXPLAIN / ANALYZE text sql.
func (s *Session) prepareExplain(ctx context.Context, snap *rules.Snapshot, sql string, r explainReq) (*Stmt, error) {
	var markers markerCollector
	r.stmt.Accept(&markers)
	p, err := s.describe(snap, r.stmt, r.text)
	if err != nil {
		return nil, err
	}
	shard, text, labelled := p.shard, p.sql, p.branches != nil
	if p.scatter != nil {
		shard, text, labelled = p.scatter.targets[0].shard, p.scatter.targets[0].sql, true
	}
	bs, pkts, err := s.prepareOn(ctx, snap, shard, r.head+text)
	if err != nil {
		return nil, err
	}
	stmt := &Stmt{orig: sql, text: sql, explain: true, params: len(markers), hint: statementHint(r.stmt), write: r.analyze && isWrite(r.stmt)}
	if bs.Params == len(markers) {
		stmt.paramDefs = pkts[:bs.Params]
	} else { // the shard's statement has other placeholders: describe each as text
		for range markers {
			stmt.paramDefs = append(stmt.paramDefs, wire.AppendColumnDef(nil, wire.Column{Name: "?", Charset: 63, Type: mysql.MYSQL_TYPE_VAR_STRING}))
		}
	}
	if labelled {
		stmt.colDefs = append(stmt.colDefs, wire.AppendColumnDef(nil, shardColumn))
	}
	for _, d := range pkts[bs.Params:] {
		stmt.colDefs = append(stmt.colDefs, p.columns.Rewrite(d))
	}
	return stmt, nil
}

// executeExplain runs a prepared EXPLAIN with params: the answer of the same EXPLAIN sent
// as a plain query with the values written in, in the binary protocol.
func (s *Session) executeExplain(ctx context.Context, snap *rules.Snapshot, st *Stmt, params []wire.Param, w wire.PacketWriter) error {
	r, ok := s.explainText(st.orig)
	if !ok {
		return sqlerr.New(sqlerr.ErUnknownError, "router: a prepared EXPLAIN no longer reads as one")
	}
	if len(params) > 0 {
		if err := bindParams(r.stmt, params); err != nil {
			return err
		}
		text, err := restoreSQL(s.restoreFlags, s.lists, r.stmt)
		if err != nil {
			return err
		}
		r.text = text
	}
	return s.execExplain(ctx, snap, r, false, &binaryRows{w: w})
}

// binaryRows is a PacketWriter that passes text-protocol result sets to w in the binary
// protocol: column definitions and EOF packets as they are, each row encoded by its
// columns' types (engine.AppendBinaryRow).
type binaryRows struct {
	w    wire.PacketWriter
	cols []engine.ColDef
	n    int // column count of the current result set; 0 outside one
	seen int // its column definitions and EOF seen
	vals [][]byte
	buf  []byte
}

func (b *binaryRows) WritePacket(p []byte) error {
	switch {
	case b.n == 0:
		if n, m := wire.LenencInt(p); m == len(p) && m > 0 && p[0] != wire.OKHeader && !wire.IsErr(p) && n <= wire.MaxColumns {
			b.n, b.seen, b.cols = int(n), 0, b.cols[:0]
		}
		return b.w.WritePacket(p)
	case b.seen < b.n:
		c, ok := engine.ParseColDef(p)
		if !ok {
			return malformedExplain
		}
		b.cols = append(b.cols, c)
		b.seen++
		return b.w.WritePacket(p)
	case b.seen == b.n: // the EOF after the column definitions
		b.seen++
		return b.w.WritePacket(p)
	case wire.IsEOF(p) || wire.IsErr(p):
		b.n = 0
		return b.w.WritePacket(p)
	}
	b.vals = b.vals[:0]
	rest := p
	for range b.n {
		v, null, m := wire.LenencString(rest)
		if m == 0 {
			return malformedExplain
		}
		if null {
			v = nil
		} else if v == nil {
			v = []byte{}
		}
		b.vals = append(b.vals, v)
		rest = rest[m:]
	}
	var err error
	if b.buf, err = engine.AppendBinaryRow(b.buf[:0], b.cols, b.vals); err != nil {
		return sqlerr.New(sqlerr.ErMalformedPacket, "Malformed communication packet (an EXPLAIN row from a shard: %v)", err)
	}
	return b.w.WritePacket(b.buf)
}
