package introspect

import (
	"maps"
	"slices"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
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

// Names maps the user's logical databases to their physical names on shard and back,
// and the tables of table-per-slot layouts: information_schema on a shard describes each slot
// table (accounts_0002, accounts_0003); the proxy shows the shard's first one under the
// logical name and hides the others, so every logical table appears once.
type Names struct {
	toPhysical map[string]string
	toLogical  map[string]string
	// tableToPhysical maps a logical table-per-slot table to the physical table of its first
	// slot on the shard; tableToLogical maps that physical table back.
	tableToPhysical map[string]string
	tableToLogical  map[string]string
	// otherSlots are the shard's physical tables of later slots: rows naming them are dropped.
	otherSlots map[string]bool
}

// NamesOn is the translation for statements of user run on shard.
func NamesOn(snap *rules.Snapshot, user string, shard *rules.Shard) Names {
	n := Names{toPhysical: map[string]string{}, toLogical: map[string]string{},
		tableToPhysical: map[string]string{}, tableToLogical: map[string]string{}, otherSlots: map[string]bool{}}
	u, _ := snap.User(user)
	for _, name := range snap.DatabaseNames() {
		db, _ := snap.Database(name)
		if u == nil || !u.CanUse(name) || !slices.Contains(db.Shards(), shard) {
			continue
		}
		phys := shard.Database
		if phys != name {
			n.toPhysical[name], n.toLogical[phys] = phys, name
		}
		for _, tn := range db.TableNames() {
			t := db.Table(tn)
			if t.Kind != rules.KindSharded || !t.TablePerSlot {
				continue
			}
			for slot := range t.Scheme.Func.Slots() {
				if t.Scheme.SlotShard(slot) != shard {
					continue
				}
				pt := t.PhysicalName(slot)
				if _, ok := n.tableToPhysical[t.Name]; ok {
					n.otherSlots[pt] = true
					continue
				}
				n.tableToPhysical[t.Name], n.tableToLogical[pt] = pt, t.Name
			}
		}
	}
	return n
}

// Empty reports whether nothing is translated.
func (n Names) Empty() bool { return len(n.toPhysical) == 0 && len(n.tableToPhysical) == 0 }

// OtherSlots are the shard's physical tables of later slots (rows naming them are hidden),
// sorted.
func (n Names) OtherSlots() []string { return slices.Sorted(maps.Keys(n.otherSlots)) }

// Physical maps a logical database or table-per-slot table name to its physical name.
func (n Names) Physical(name string) (string, bool) {
	if p, ok := n.toPhysical[name]; ok {
		return p, true
	}
	p, ok := n.tableToPhysical[name]
	return p, ok
}

// Shard is the shard a statement about information_schema (or a SHOW) asks: the
// database's default shard, unless it compares with the name of a sharded table that has no
// copy there; then the shard of that table's first slot.
func Shard(db *rules.Database, st ast.StmtNode, params []wire.Param) *rules.Shard {
	var names stringValues
	st.Accept(&names)
	for _, p := range params {
		if v, null, m := wire.LenencString(p.Value); !p.Null && m > 0 && m == len(p.Value) && !null {
			names = append(names, string(v))
		}
	}
	for _, name := range names {
		if !db.Configured(name) {
			continue
		}
		t := db.Table(name)
		if t.Kind != rules.KindSharded {
			continue
		}
		ps := t.Placements()
		if !slices.ContainsFunc(ps, func(p rules.Placement) bool { return p.Shard == db.DefaultShard }) {
			return ps[0].Shard
		}
	}
	return db.DefaultShard
}

// stringValues collects a statement's string literals.
type stringValues []string

func (v *stringValues) Enter(n ast.Node) (ast.Node, bool) {
	if x, ok := n.(*test_driver.ValueExpr); ok && x.Kind() == test_driver.KindString {
		*v = append(*v, x.GetString())
	}
	return n, false
}

func (v *stringValues) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// RewriteLiterals replaces the string literals of st naming a logical database or
// table-per-slot table by its physical name; it reports whether it changed any. Each
// literal replaced is passed through replaced(old, new), which returns the node put in its
// place (and may record the swap to undo it).
func RewriteLiterals(st ast.Node, n Names, replaced func(old, now ast.Node) ast.Node) bool {
	lr := &literalRewriter{names: n, replaced: replaced}
	st.Accept(lr)
	return lr.changed
}

type literalRewriter struct {
	names    Names
	replaced func(old, now ast.Node) ast.Node
	changed  bool
}

func (r *literalRewriter) Enter(n ast.Node) (ast.Node, bool) { return n, false }

func (r *literalRewriter) Leave(n ast.Node) (ast.Node, bool) {
	v, ok := n.(*test_driver.ValueExpr)
	if !ok || v.Kind() != test_driver.KindString {
		return n, true
	}
	if phys, ok := r.names.Physical(v.GetString()); ok {
		r.changed = true
		return r.replaced(n, ast.NewValueExpr(phys, "", "")), true
	}
	return n, true
}

// PhysicalParams maps string parameters naming a logical database to the physical name.
func (n Names) PhysicalParams(params []wire.Param) []wire.Param {
	var out []wire.Param
	for i, p := range params {
		if p.Null {
			continue
		}
		s, _, m := wire.LenencString(p.Value)
		if m == 0 || m != len(p.Value) {
			continue
		}
		if phys, ok := n.Physical(string(s)); ok {
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

// NewRows returns a PacketWriter that writes to w the result rows passing through it with
// logical names (see Rows); binary says the rows are in the binary protocol.
func NewRows(w wire.PacketWriter, n Names, binary bool) *Rows {
	return &Rows{w: w, names: n, binary: binary}
}

// Rows is a PacketWriter that turns physical names in result rows back into logical
// ones: a cell that is exactly a physical database name or the first slot table of a
// table-per-slot table is replaced (and SHOW CREATE TABLE's statement), and rows naming a
// later slot table are dropped. Rows are text-protocol, or binary when binary is set.
type Rows struct {
	w      wire.PacketWriter
	names  Names
	binary bool
	cols   []wire.ColDef // of the current result set; nil before its column count
	n      int           // its column count
	seen   int           // packets of the current result set so far
	buf    []byte
}

// WritePacket passes p on, a row with logical names or not at all.
func (l *Rows) WritePacket(p []byte) error {
	switch {
	case l.n == 0:
		if n, m := wire.LenencInt(p); m == len(p) && m > 0 && p[0] != wire.OKHeader && !wire.IsErr(p) {
			l.n, l.seen, l.cols = int(n), 0, l.cols[:0]
		}
		return l.w.WritePacket(p)
	case wire.IsEOF(p) || wire.IsErr(p):
		l.seen++
		if l.seen > l.n+1 || wire.IsErr(p) { // the EOF after the rows ends the result set
			l.n = 0
		}
		return l.w.WritePacket(p)
	}
	l.seen++
	if l.seen <= l.n { // a column definition
		c, _ := wire.ParseColDef(p)
		l.cols = append(l.cols, c)
		return l.w.WritePacket(p)
	}
	row, keep := l.mapRow(p)
	if !keep {
		return nil
	}
	return l.w.WritePacket(row)
}

// mapRow returns the row with logical names, or keep false for a row to drop. A row it
// cannot decode goes through unchanged.
func (l *Rows) mapRow(p []byte) (row []byte, keep bool) {
	rest, start := p, 0
	if l.binary {
		start = 1 + (l.n+9)/8
		if len(p) < start {
			return p, true
		}
		rest = p[start:]
	}
	l.buf = append(l.buf[:0], p[:start]...)
	changed := false
	for i := range l.n {
		if l.binary && p[1+(i+2)/8]&(1<<((i+2)%8)) != 0 {
			continue // NULL
		}
		var v []byte
		var null bool
		n := 0
		if l.binary && i < len(l.cols) {
			n = fixedSize(l.cols[i].Type, rest)
		}
		fixed := n > 0
		if !fixed {
			v, null, n = wire.LenencString(rest)
			if n == 0 {
				return p, true
			}
		}
		if n > len(rest) {
			return p, true
		}
		cell := rest[:n]
		rest = rest[n:]
		if null || fixed {
			l.buf = append(l.buf, cell...)
			continue
		}
		if l.names.otherSlots[string(v)] {
			return nil, false
		}
		if logical, ok := l.names.Logical(string(v)); ok {
			l.buf = wire.AppendLenencString(l.buf, logical)
			changed = true
			continue
		}
		l.buf = append(l.buf, cell...)
	}
	if !changed {
		return p, true
	}
	return l.buf, true
}

// Logical maps a physical database or slot table name (or a SHOW CREATE TABLE or SHOW
// CREATE TRIGGER statement of a slot table) to the logical name.
func (n Names) Logical(v string) (string, bool) {
	if l, ok := n.toLogical[v]; ok {
		return l, true
	}
	if l, ok := n.tableToLogical[v]; ok {
		return l, true
	}
	const create = "CREATE TABLE `"
	if strings.HasPrefix(v, create) {
		name, rest, ok := strings.Cut(v[len(create):], "`")
		if l, found := n.tableToLogical[name]; ok && found {
			return create + l + "`" + rest, true
		}
	}
	return n.logicalTrigger(v)
}

// logicalTrigger maps SHOW CREATE TRIGGER's statement of a trigger on a slot table to the
// logical tables: the proxy created it naming its slot table, and the slot tables of its
// body, backquoted (router/planner/program_targets.go); every backquoted name of one of the
// shard's first slot tables outside string literals becomes the logical table's.
func (n Names) logicalTrigger(v string) (string, bool) {
	if len(n.tableToLogical) == 0 || !strings.HasPrefix(v, "CREATE ") || !strings.Contains(v, " TRIGGER ") {
		return "", false
	}
	var b strings.Builder
	changed := false
	for i := 0; i < len(v); {
		switch c := v[i]; c {
		case '\'', '"':
			j := i + 1
			for j < len(v) && v[j] != c {
				if v[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(v)) // a doubled quote reads as two strings side by side: the same bytes
			b.WriteString(v[i:j])
			i = j
		case '`':
			j := i + 1
			for j < len(v) && (v[j] != '`' || j+1 < len(v) && v[j+1] == '`') {
				if v[j] == '`' {
					j++
				}
				j++
			}
			if j >= len(v) {
				b.WriteString(v[i:])
				i = len(v)
				break
			}
			name := strings.ReplaceAll(v[i+1:j], "``", "`")
			if l, ok := n.tableToLogical[name]; ok {
				b.WriteString("`" + strings.ReplaceAll(l, "`", "``") + "`")
				changed = true
			} else {
				b.WriteString(v[i : j+1])
			}
			i = j + 1
		default:
			b.WriteByte(c)
			i++
		}
	}
	if !changed {
		return "", false
	}
	return b.String(), true
}

// fixedSize is the size of a binary-protocol value of a fixed-size or date/time type at the
// start of b, 0 for length-encoded types.
func fixedSize(typ byte, b []byte) int {
	switch typ {
	case mysql.MYSQL_TYPE_TINY:
		return 1
	case mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_YEAR:
		return 2
	case mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_FLOAT:
		return 4
	case mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_DOUBLE:
		return 8
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIME:
		if len(b) == 0 {
			return 0
		}
		return 1 + int(b[0])
	}
	return 0
}
