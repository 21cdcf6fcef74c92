package router

import (
	"context"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// EXPLAIN / ANALYZE of a statement: router/planner recognises it (ExplainText, ExplainOf)
// and says what each shard is asked (PlanExplain); the session asks them and merges their
// answers.

// execExplain answers EXPLAIN / ANALYZE of a statement with the plans of the shards that
// would run it: a statement routed to one shard gets that shard's own answer; one that runs
// on several (scatter reads, multi-shard writes) gets each shard's answer, labelled by a
// first column `shard`. Physical database and slot table names are turned back into the
// logical ones.
func (s *Session) execExplain(ctx context.Context, snap *rules.Snapshot, r planner.ExplainReq, more bool, w wire.PacketWriter) error {
	ep, err := s.planner(snap).PlanExplain(snap, r)
	if err != nil {
		return err
	}
	if attrs := ep.P.Attributes(); attrs.Sticky {
		s.sticky = true
	}
	if names := ep.P.Attributes().Names; !names.Empty() {
		w = introspect.NewRows(w, names, false)
	}
	n := len(ep.Targets)
	for i, t := range ep.Targets {
		lw := &explainWriter{w: w, first: i == 0, last: i == n-1, names: t.Names}
		if ep.Labelled {
			lw.label = t.Shard.Name
		}
		last := more && i == n-1
		if r.Analyze && planner.IsWrite(r.Stmt) {
			// ANALYZE runs the statement: a write like any other (one shard, see planner.Planner.PlanExplain).
			if err := s.checkWrite(ctx, t.Shard); err != nil {
				return err
			}
			err = s.run(ctx, snap, t.Shard, t.SQL, last, lw)
		} else {
			err = s.runRead(ctx, snap, t.Shard, t.SQL, last, lw)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// explainWriter passes one shard's EXPLAIN result (text protocol) to the client with logical
// names. With a label it adds a first column `shard` holding it; the column definitions are
// written only by the first shard and the closing EOF only by the last, so the shards'
// answers form one result set.
type explainWriter struct {
	w           wire.PacketWriter
	label       string
	first, last bool
	names       introspect.Columns
	t           wire.ResultTracker
	buf         []byte
}

// WritePacket passes p on as the merged result has it (see explainWriter).
func (e *explainWriter) WritePacket(p []byte) error {
	switch e.t.Next(p) {
	case wire.PartColumnCount:
		if !e.first {
			return nil
		}
		if e.label == "" {
			return e.w.WritePacket(p)
		}
		if err := e.w.WritePacket(wire.AppendLenencInt(nil, uint64(e.t.Columns()+1))); err != nil {
			return err
		}
		return e.w.WritePacket(wire.AppendColumnDef(nil, shardColumn))
	case wire.PartColumnDef:
		if !e.first {
			return nil
		}
		return e.w.WritePacket(e.names.Rewrite(p))
	case wire.PartDefsEOF:
		if !e.first {
			return nil
		}
		return e.w.WritePacket(p)
	case wire.PartEnd:
		if !e.last {
			return nil
		}
		return e.w.WritePacket(p)
	case wire.PartRow:
		return e.row(p)
	}
	return e.w.WritePacket(p) // not a result set, or its ERR
}

// row passes a row on with its label first and its values' names made logical.
func (e *explainWriter) row(p []byte) error {
	e.buf = e.buf[:0]
	if e.label != "" {
		e.buf = wire.AppendLenencString(e.buf, e.label)
	}
	rest := p
	for range e.t.Columns() {
		v, null, m := wire.LenencString(rest)
		if m == 0 {
			return malformedExplain
		}
		if null {
			e.buf = append(e.buf, rest[:m]...)
		} else {
			e.buf = wire.AppendLenencString(e.buf, e.names.LogicalText(string(v)))
		}
		rest = rest[m:]
	}
	return e.w.WritePacket(e.buf)
}

// shardColumn is the first column of an EXPLAIN answered by several shards: which one.
var shardColumn = wire.Column{Name: "shard", Charset: 45, Length: 256, Type: mysql.MYSQL_TYPE_VAR_STRING, Flags: mysql.NOT_NULL_FLAG}

// malformedExplain is the error of an EXPLAIN row that does not decode.
var malformedExplain = sqlerr.New(sqlerr.ErMalformedPacket, "Malformed communication packet (an EXPLAIN row from a shard)")
