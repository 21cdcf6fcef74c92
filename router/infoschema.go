package router

import (
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// information_schema describes physical databases. For a statement that reads it, the
// proxy translates database names both ways: logical names the statement compares with
// (literals, DATABASE(), bound parameters) become the physical name on the statement's
// shard, and physical names in the rows that come back become logical again (text
// protocol), so tools and ORMs introspect the logical database.

// schemaNames maps the user's logical databases to their physical names on shard and back.
type schemaNames struct {
	toPhysical map[string]string
	toLogical  map[string]string
}

func (s *Session) schemaNames(snap *rules.Snapshot, shard *rules.Shard) schemaNames {
	n := schemaNames{toPhysical: map[string]string{}, toLogical: map[string]string{}}
	u, _ := snap.User(s.user)
	for _, name := range snap.DatabaseNames() {
		db, _ := snap.Database(name)
		if u == nil || !u.CanUse(name) || db.DefaultShard != shard {
			continue
		}
		phys := physicalDB(db, shard)
		if phys != name {
			n.toPhysical[name], n.toLogical[phys] = phys, name
		}
	}
	return n
}

func (n schemaNames) empty() bool { return len(n.toPhysical) == 0 }

// rewriteLiterals replaces string literals naming a logical database by its physical name.
type literalRewriter struct {
	names   schemaNames
	changed bool
}

func (r *literalRewriter) Enter(n ast.Node) (ast.Node, bool) { return n, false }

func (r *literalRewriter) Leave(n ast.Node) (ast.Node, bool) {
	v, ok := n.(*test_driver.ValueExpr)
	if !ok || v.Kind() != test_driver.KindString {
		return n, true
	}
	if phys, ok := r.names.toPhysical[v.GetString()]; ok {
		r.changed = true
		return ast.NewValueExpr(phys, "", ""), true
	}
	return n, true
}

// physicalParams maps string parameters naming a logical database to the physical name.
func (n schemaNames) physicalParams(params []wire.Param) []wire.Param {
	var out []wire.Param
	for i, p := range params {
		if p.Null {
			continue
		}
		s, _, m := wire.LenencString(p.Value)
		if m == 0 || m != len(p.Value) {
			continue
		}
		if phys, ok := n.toPhysical[string(s)]; ok {
			if out == nil {
				out = append([]wire.Param(nil), params...)
			}
			out[i].Value = wire.AppendLenencString(nil, phys)
		}
	}
	if out == nil {
		return params
	}
	return out
}

// logicalRows is a PacketWriter that turns physical database names in text-protocol rows
// back into logical ones (a cell is replaced when it is exactly a physical name).
type logicalRows struct {
	w     wire.PacketWriter
	names schemaNames
	cols  int // columns of the current result set; 0 before its column count
	seen  int // packets of the current result set so far
	buf   []byte
}

func (l *logicalRows) WritePacket(p []byte) error {
	switch {
	case l.cols == 0:
		if n, m := wire.LenencInt(p); m == len(p) && m > 0 && p[0] != wire.OKHeader && !wire.IsErr(p) {
			l.cols, l.seen = int(n), 0
		}
		return l.w.WritePacket(p)
	case wire.IsEOF(p) || wire.IsErr(p):
		l.seen++
		if l.seen > l.cols+1 { // the EOF after the rows ends the result set
			l.cols = 0
		}
		return l.w.WritePacket(p)
	}
	l.seen++
	if l.seen <= l.cols {
		return l.w.WritePacket(p) // a column definition
	}
	return l.w.WritePacket(l.mapRow(p))
}

func (l *logicalRows) mapRow(p []byte) []byte {
	l.buf = l.buf[:0]
	rest := p
	changed := false
	for range l.cols {
		v, null, n := wire.LenencString(rest)
		if n == 0 {
			return p
		}
		if null {
			l.buf = append(l.buf, 0xfb)
		} else if logical, ok := l.names.toLogical[string(v)]; ok {
			l.buf = wire.AppendLenencString(l.buf, logical)
			changed = true
		} else {
			l.buf = append(l.buf, rest[:n]...)
		}
		rest = rest[n:]
	}
	if !changed {
		return p
	}
	return l.buf
}
