package introspect

import (
	"regexp"
	"strings"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// Columns turns the physical names a backend puts in column definitions (the schema, the
// table and original table fields) into the logical ones a client of one MySQL server would
// see: physical databases of the user's logical databases on the shard, and the slot tables
// (name_NNNN) of table-per-slot tables.
type Columns struct {
	dbs     map[string]string // physical database → logical
	perSlot map[string]bool   // logical names of table-per-slot tables
}

// Empty reports whether nothing is renamed.
func (n Columns) Empty() bool { return len(n.dbs) == 0 && len(n.perSlot) == 0 }

// ColumnsOf is the renaming for results of a statement of logical database db run on
// shard (a shard belongs to one logical database). It allocates only when names differ.
func ColumnsOf(db *rules.Database, shard *rules.Shard) Columns {
	var n Columns
	if db == nil || shard == nil {
		return n
	}
	if shard.Database != db.Name {
		n.dbs = map[string]string{shard.Database: db.Name}
	}
	for _, name := range db.TableNames() {
		if t := db.Table(name); t != nil && t.TablePerSlot {
			if n.perSlot == nil {
				n.perSlot = map[string]bool{}
			}
			n.perSlot[t.Name] = true
		}
	}
	return n
}

// table returns the logical name of a physical table name.
func (n Columns) table(name string) (string, bool) {
	i := strings.LastIndexByte(name, '_')
	if i < 0 || len(name)-i != 5 || !n.perSlot[name[:i]] {
		return "", false
	}
	for _, c := range name[i+1:] {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return name[:i], true
}

// Rewrite returns the column definition p with logical names (p itself when none changes).
func (n Columns) Rewrite(p []byte) []byte {
	var f [6][]byte // catalog, schema, table, org_table, name, org_name
	rest := p
	for i := range f {
		v, _, m := wire.LenencString(rest)
		if m == 0 {
			return p
		}
		f[i], rest = v, rest[m:]
	}
	changed := false
	if l, ok := n.dbs[string(f[1])]; ok {
		f[1], changed = []byte(l), true
	}
	for _, i := range []int{2, 3} {
		if l, ok := n.table(string(f[i])); ok {
			f[i], changed = []byte(l), true
		}
	}
	if !changed {
		return p
	}
	out := make([]byte, 0, len(p))
	for _, v := range f {
		out = wire.AppendLenencString(out, string(v))
	}
	return append(out, rest...)
}

// NewColumns returns a PacketWriter that writes to w the result sets passing through it with
// their column definitions renamed by n.
func NewColumns(w wire.PacketWriter, n Columns) *LogicalColumns {
	return &LogicalColumns{w: w, names: n}
}

// LogicalColumns is a PacketWriter that rewrites the column definitions of the result sets
// passing through it with names (rows pass unchanged).
type LogicalColumns struct {
	w       wire.PacketWriter
	names   Columns
	n, seen int // column count of the current result set (0 between result sets), packets of it seen
}

// WritePacket passes p on, renamed when it is a column definition.
func (l *LogicalColumns) WritePacket(p []byte) error {
	switch {
	case l.n == 0:
		if n, m := wire.LenencInt(p); m == len(p) && m > 0 && p[0] != wire.OKHeader && !wire.IsErr(p) {
			l.n, l.seen = int(n), 0
		}
	case l.seen < l.n:
		l.seen++
		return l.w.WritePacket(l.names.Rewrite(p))
	case wire.IsErr(p) || (wire.IsEOF(p) && l.seen > l.n):
		l.n = 0 // the result set ended
	case wire.IsEOF(p):
		l.seen++ // the EOF after the column definitions
	}
	return l.w.WritePacket(p)
}

// LogicalDB is the logical database of results from shard (a plan's first shard): what the
// renaming maps its physical database to (the physical name itself when they agree).
func (n Columns) LogicalDB(shard *rules.Shard) string {
	if l, ok := n.dbs[shard.Database]; ok {
		return l
	}
	return shard.Database
}

// ForShard is the renaming for the results of shard, whose physical database holds logical.
func (n Columns) ForShard(shard *rules.Shard, logical string) Columns {
	out := Columns{perSlot: n.perSlot}
	if shard.Database != logical {
		out.dbs = map[string]string{shard.Database: logical}
	}
	return out
}

// identifierRun matches the identifiers inside an EXPLAIN cell (a table name, db.table.col,
// JSON text).
var identifierRun = regexp.MustCompile("[0-9A-Za-z_$]+")

// LogicalText replaces every physical database and slot table name in v by its logical name.
func (n Columns) LogicalText(v string) string {
	if n.Empty() {
		return v
	}
	return identifierRun.ReplaceAllStringFunc(v, func(tok string) string {
		if l, ok := n.dbs[tok]; ok {
			return l
		}
		if l, ok := n.table(tok); ok {
			return l
		}
		return tok
	})
}
