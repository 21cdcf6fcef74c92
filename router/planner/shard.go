package planner

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// TableRef is one table a statement names, resolved against the rules.
type TableRef struct {
	Node   *ast.TableName
	source *ast.TableSource // nil outside FROM/JOIN (e.g. SHOW, DDL)
	db     *rules.Database
	Table  *rules.Table
	alias  string // lower-cased alias, or the table name
	// bare: rename a slot table without the logical name as its alias. Under LOCK TABLES,
	// MariaDB wants an aliased table locked under that alias, and one LOCK TABLES cannot
	// give two slot tables the same alias, so statements of a session holding table locks
	// name slot tables bare unless a column is qualified by the table's name.
	bare bool
}

// errNeedsParams marks a plan that depends on the values bound to ? placeholders.
var errNeedsParams = sqlerr.New(sqlerr.ErUnknownError, "router: the route depends on parameter values")

// routeSharded places a statement that names sharded or broadcast tables on one shard and
// renames physical tables (edits logged in ed). params are the bound values of a prepared
// statement (nil when planning at prepare time: a route that needs them returns
// errNeedsParams).
func (pl *Planner) routeSharded(ed *edits, st ast.StmtNode, refs []TableRef, params []wire.Param) (*rules.Shard, error) {
	sharded, nested, err := shardedRefs(st, refs)
	if err != nil {
		return nil, err
	}
	if _, ok := st.(*ast.InsertStmt); ok && len(sharded) > 0 && sharded[0].Node == targetTable(st) {
		return pl.routeInsert(ed, st.(*ast.InsertStmt), sharded[0], params)
	}
	if len(sharded) == 0 && len(nested) == 0 {
		// Only broadcast (and single) tables: read the copy on the default shard.
		return refs[0].db.DefaultShard, checkSingles(refs, refs[0].db.DefaultShard)
	}
	if len(nested) > 0 {
		return pl.routeNested(ed, st, refs, sharded, nested, params)
	}
	if isDDL(st) {
		return nil, sqlerr.NotSupported("DDL on sharded table %s through the proxy (it must run on every shard)", sharded[0].Table.Name)
	}
	if _, sel := st.(*ast.SelectStmt); sel && pl.Unpruned {
		return nil, errScatter // a scatter template: its executions prune (scatter_prepared.go)
	}
	slot, err := pl.oneSlot(st, sharded, params)
	if err != nil {
		return nil, err
	}
	if u, ok := st.(*ast.UpdateStmt); ok {
		if err := checkKeyNotUpdated(u, sharded); err != nil {
			return nil, err
		}
	}
	shard := sharded[0].Table.Scheme.SlotShard(slot)
	_, isDelete := st.(*ast.DeleteStmt)
	for _, r := range sharded {
		ed.rename(r, r.Table.PhysicalName(slot), !isDelete)
	}
	return shard, checkSingles(refs, shard)
}

// shardedRefs sorts the sharded tables of refs into those of st's own FROM (or target) and
// those of its subqueries, refusing INSERT ... SELECT over sharded or broadcast tables and
// writes that would leave a broadcast table's copies different.
func shardedRefs(st ast.StmtNode, refs []TableRef) (sharded, nested []TableRef, err error) {
	if ins, ok := st.(*ast.InsertStmt); ok && ins.Select != nil {
		for _, r := range refs {
			if r.Table.Kind != rules.KindSingle {
				return nil, nil, nestedRefusal{sqlerr.NotSupported("INSERT ... SELECT with sharded or broadcast table %s", r.Table.Name)} // bound by its rows: subquery_insert.go
			}
		}
	}
	write := IsWrite(st)
	top := topLevelTables(st)
	for _, r := range refs {
		switch r.Table.Kind {
		case rules.KindSharded:
			if !top[r.Node] {
				nested = append(nested, r) // pinned by its own block's WHERE, or refused (routeNested)
				continue
			}
			sharded = append(sharded, r)
		case rules.KindBroadcast:
			if write && (r.Node == targetTable(st) || len(refs) > 1 && !isInsert(st)) {
				return nil, nil, sqlerr.NotSupported("a write to broadcast table %s in a statement with sharded or single tables (the copies would not stay identical)", r.Table.Name)
			}
		}
	}
	return sharded, nested, nil
}

// oneSlot is the one slot the WHERE of st pins every sharded table of its FROM to, or why
// there is none: errScatter for a SELECT (planScatter takes over), a refusal otherwise.
func (pl *Planner) oneSlot(st ast.StmtNode, sharded []TableRef, params []wire.Param) (int, error) {
	_, sel := st.(*ast.SelectStmt)
	where := whereOf(st)
	slot := -1
	for _, r := range sharded {
		vals, ok, err := pl.keyValues(where, r, params)
		if err != nil {
			return 0, err
		}
		if !ok {
			if sel {
				return 0, errScatter
			}
			return 0, sqlerr.NotSupported("a statement on sharded table %s without its shard key %s = value (or IN list) in WHERE: scatter queries come later",
				r.Table.Name, r.Table.Key)
		}
		slots, err := slotsOf(r.Table, vals)
		if err != nil {
			return 0, err
		}
		if len(slots) != 1 || (slot >= 0 && slots[0] != slot) {
			if sel {
				return 0, errScatter
			}
			return 0, sqlerr.NotSupported("a statement whose rows of %s span several slots (keys on different shards): scatter queries come later", r.Table.Name)
		}
		slot = slots[0]
		if r.Table.Scheme != sharded[0].Table.Scheme {
			return 0, sqlerr.NotSupported("a join of tables sharded by different schemes (%s, %s)", sharded[0].Table.Name, r.Table.Name)
		}
	}
	return slot, nil
}

// topLevelTables returns the tables of a statement's own FROM/JOIN (or INSERT/UPDATE/DELETE
// target), not those of subqueries or derived tables, whose rows no outer WHERE bounds.
func topLevelTables(st ast.StmtNode) map[*ast.TableName]bool {
	out := map[*ast.TableName]bool{}
	var walk func(ast.ResultSetNode)
	walk = func(n ast.ResultSetNode) {
		switch n := n.(type) {
		case *ast.Join:
			walk(n.Left)
			if n.Right != nil {
				walk(n.Right)
			}
		case *ast.TableSource:
			if tn, ok := n.Source.(*ast.TableName); ok {
				out[tn] = true
			}
		}
	}
	if d, ok := st.(*ast.DeleteStmt); ok && d.Tables != nil {
		for _, t := range d.Tables.Tables {
			out[t] = true // DELETE t1 FROM t1 JOIN ...: names of the join's tables
		}
	}
	if refs := tableRefsOf(st); refs != nil && refs.TableRefs != nil {
		walk(refs.TableRefs)
	}
	return out
}

// tableRefsOf returns the FROM/JOIN clause of a statement (the target of INSERT).
func tableRefsOf(st ast.StmtNode) *ast.TableRefsClause {
	switch n := st.(type) {
	case *ast.SelectStmt:
		return n.From
	case *ast.InsertStmt:
		return n.Table
	case *ast.UpdateStmt:
		return n.TableRefs
	case *ast.DeleteStmt:
		return n.TableRefs
	}
	return nil
}

func isInsert(st ast.StmtNode) bool {
	_, ok := st.(*ast.InsertStmt)
	return ok
}

// checkSingles refuses statements joining single tables that do not live on shard.
func checkSingles(refs []TableRef, shard *rules.Shard) error {
	for _, r := range refs {
		if r.Table.Kind == rules.KindSingle && r.db.DefaultShard != shard {
			return sqlerr.NotSupported("a statement joining single table %s (on shard %s) with rows on shard %s", r.Table.Name, r.db.DefaultShard.Name, shard.Name)
		}
	}
	return nil
}

// routeInsert places an INSERT into a sharded table whose rows all land in one slot (an
// INSERT whose rows span slots is split by planMultiWrite before it gets here).
func (pl *Planner) routeInsert(ed *edits, ins *ast.InsertStmt, r TableRef, params []wire.Param) (*rules.Shard, error) {
	rowSlots, err := InsertRowSlots(ins, r, params)
	if err != nil {
		return nil, err
	}
	if len(distinct(rowSlots)) != 1 {
		return nil, sqlerr.NotSupported("a multi-row INSERT into %s whose rows belong to several slots, with other tables in the statement", r.Table.Name)
	}
	ed.rename(r, r.Table.PhysicalName(rowSlots[0]), false)
	return r.Table.Scheme.SlotShard(rowSlots[0]), nil
}

// InsertRowSlots returns the slot of each row of an INSERT into sharded table r.
func InsertRowSlots(ins *ast.InsertStmt, r TableRef, params []wire.Param) ([]int, error) {
	if ins.Select != nil {
		return nil, sqlerr.NotSupported("INSERT ... SELECT into sharded table %s", r.Table.Name)
	}
	if ins.Setlist {
		return nil, sqlerr.NotSupported("INSERT ... SET into sharded table %s (use a column list)", r.Table.Name)
	}
	col := -1
	for i, c := range ins.Columns {
		if c.Name.L == r.Table.Key {
			col = i
		}
	}
	if col < 0 {
		return nil, sqlerr.NotSupported("INSERT into sharded table %s without naming its shard key column %s", r.Table.Name, r.Table.Key)
	}
	for _, a := range ins.OnDuplicate {
		if a.Column.Name.L == r.Table.Key {
			return nil, sqlerr.NotSupported("changing shard key %s of %s in ON DUPLICATE KEY UPDATE", r.Table.Key, r.Table.Name)
		}
	}
	out := make([]int, 0, len(ins.Lists))
	for i, row := range ins.Lists {
		if col >= len(row) {
			return nil, sqlerr.New(1136, "Column count doesn't match value count at row %d", i+1)
		}
		v, ok, err := exprValue(row[col], params)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, sqlerr.NotSupported("INSERT into sharded table %s with a shard key that is not a literal or a parameter", r.Table.Name)
		}
		slot, err := r.Table.Scheme.Func.Slot(v)
		if err != nil {
			return nil, sqlerr.New(sqlerr.ErUnknownError, "shard key %s of %s: %v", r.Table.Key, r.Table.Name, err)
		}
		out = append(out, slot)
	}
	return out, nil
}

// slotsOf maps key values to their distinct slots.
func slotsOf(t *rules.Table, vals []rules.Value) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, v := range vals {
		slot, err := t.Scheme.Func.Slot(v)
		if err != nil {
			return nil, sqlerr.New(sqlerr.ErUnknownError, "shard key %s of %s: %v", t.Key, t.Name, err)
		}
		if !seen[slot] {
			seen[slot] = true
			out = append(out, slot)
		}
	}
	return out, nil
}

// keyValues finds a conjunct of where that fixes r's shard key: key = v, v = key, or
// key IN (v, ...). Any one such conjunct bounds the rows the statement touches.
func (pl *Planner) keyValues(where ast.ExprNode, r TableRef, params []wire.Param) ([]rules.Value, bool, error) {
	switch e := where.(type) {
	case nil:
		return nil, false, nil
	case *ast.ParenthesesExpr:
		return pl.keyValues(e.Expr, r, params)
	case *ast.BinaryOperationExpr:
		switch e.Op {
		case opcode.LogicAnd:
			vals, ok, err := pl.keyValues(e.L, r, params)
			if ok || err != nil {
				return vals, ok, err
			}
			return pl.keyValues(e.R, r, params)
		case opcode.EQ:
			for _, side := range [][2]ast.ExprNode{{e.L, e.R}, {e.R, e.L}} {
				if isKeyColumn(side[0], r) {
					v, ok, err := exprValue(side[1], params)
					if ok || err != nil {
						return []rules.Value{v}, ok, err
					}
				}
			}
		}
	case *ast.PatternInExpr:
		if e.Not || e.Sel != nil || !isKeyColumn(e.Expr, r) {
			return nil, false, nil
		}
		vals := make([]rules.Value, 0, len(e.List))
		for _, x := range e.List {
			if text, ok := pl.Lists.list(x); ok { // a long list cut out before parsing (biglist.go)
				vs, ok := listValues(text, pl.RestoreFlags&format.RestoreStringEscapeBackslash != 0)
				if !ok {
					return nil, false, nil
				}
				vals = append(vals, vs...)
				continue
			}
			v, ok, err := exprValue(x, params)
			if !ok || err != nil {
				return nil, false, err
			}
			vals = append(vals, v)
		}
		return vals, true, nil
	}
	return nil, false, nil
}

func isKeyColumn(e ast.ExprNode, r TableRef) bool {
	c, ok := e.(*ast.ColumnNameExpr)
	if !ok || c.Name.Name.L != r.Table.Key {
		return false
	}
	q := c.Name.Table.L
	return q == "" || q == r.alias || q == r.Node.Name.L
}

// exprValue returns the value of a literal or a bound parameter.
func exprValue(e ast.ExprNode, params []wire.Param) (rules.Value, bool, error) {
	switch v := e.(type) {
	case *test_driver.ParamMarkerExpr:
		if params == nil {
			return rules.Value{}, false, errNeedsParams
		}
		if v.Order >= len(params) {
			return rules.Value{}, false, sqlerr.New(sqlerr.ErWrongArguments, "Incorrect arguments to mysqld_stmt_execute")
		}
		pv, err := paramValue(params[v.Order])
		return pv, err == nil, err
	case *test_driver.ValueExpr:
		switch x := v.GetValue().(type) {
		case nil:
			return rules.Value{Null: true}, true, nil
		case int64:
			return rules.IntValue(x), true, nil
		case uint64:
			if x <= math.MaxInt64 {
				return rules.IntValue(int64(x)), true, nil
			}
			return rules.StrValue(strconv.FormatUint(x, 10)), true, nil
		case string:
			return rules.StrValue(x), true, nil
		case []byte:
			return rules.StrValue(string(x)), true, nil
		}
		// DECIMAL and floating-point literals: MySQL compares them with an integer key
		// numerically, so an integral one is that integer.
		text := v.GetString()
		if v.Kind() == test_driver.KindFloat64 || v.Kind() == test_driver.KindFloat32 {
			text = strconv.FormatFloat(v.GetFloat64(), 'f', -1, 64)
		} else if v.Kind() == test_driver.KindMysqlDecimal {
			text = v.GetMysqlDecimal().String()
		}
		if n, ok := integral(text); ok {
			return rules.IntValue(n), true, nil
		}
		return rules.StrValue(text), true, nil
	case *ast.ParenthesesExpr:
		return exprValue(v.Expr, params)
	case *ast.UnaryOperationExpr:
		if v.Op != opcode.Minus {
			return rules.Value{}, false, nil
		}
		x, ok, err := exprValue(v.V, params)
		if !ok || err != nil || !x.IsInt || x.Int == math.MinInt64 {
			return rules.Value{}, false, err
		}
		return rules.IntValue(-x.Int), true, nil
	}
	return rules.Value{}, false, nil
}

// integral parses "2", "2.0" or "2.000" as the integer 2.
func integral(s string) (int64, bool) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		if strings.Trim(s[i+1:], "0") != "" {
			return 0, false
		}
		s = s[:i]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// paramValue decodes a binary-protocol parameter into a shard key value.
func paramValue(p wire.Param) (rules.Value, error) {
	if p.Null {
		return rules.Value{Null: true}, nil
	}
	b := p.Value
	switch p.Type {
	case mysql.MYSQL_TYPE_TINY:
		if p.Unsigned {
			return rules.IntValue(int64(b[0])), nil
		}
		return rules.IntValue(int64(int8(b[0]))), nil
	case mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_YEAR:
		u := binary.LittleEndian.Uint16(b)
		if p.Unsigned {
			return rules.IntValue(int64(u)), nil
		}
		return rules.IntValue(int64(int16(u))), nil
	case mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_INT24:
		u := binary.LittleEndian.Uint32(b)
		if p.Unsigned {
			return rules.IntValue(int64(u)), nil
		}
		return rules.IntValue(int64(int32(u))), nil
	case mysql.MYSQL_TYPE_LONGLONG:
		u := binary.LittleEndian.Uint64(b)
		if p.Unsigned && u > math.MaxInt64 {
			return rules.StrValue(strconv.FormatUint(u, 10)), nil
		}
		return rules.IntValue(int64(u)), nil
	case mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE:
		return rules.Value{}, sqlerr.NotSupported("a floating-point shard key parameter")
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_TIMESTAMP:
		return rules.StrValue(binaryDate(b)), nil
	}
	s, _, n := wire.LenencString(b)
	if n == 0 {
		return rules.Value{}, sqlerr.New(sqlerr.ErMalformedPacket, "Malformed communication packet")
	}
	if p.Type == mysql.MYSQL_TYPE_DECIMAL || p.Type == mysql.MYSQL_TYPE_NEWDECIMAL {
		if n, ok := integral(string(s)); ok {
			return rules.IntValue(n), nil
		}
	}
	return rules.StrValue(string(s)), nil
}

// binaryDate formats a binary DATE/DATETIME value (length byte, then fields).
func binaryDate(b []byte) string {
	if len(b) < 5 || b[0] < 4 {
		return "0000-00-00"
	}
	y, m, d := binary.LittleEndian.Uint16(b[1:]), b[3], b[4]
	s := fmt.Sprintf("%04d-%02d-%02d", y, m, d)
	if b[0] >= 7 {
		s += fmt.Sprintf(" %02d:%02d:%02d", b[5], b[6], b[7])
	}
	return s
}

func checkKeyNotUpdated(u *ast.UpdateStmt, refs []TableRef) error {
	for _, a := range u.List {
		for _, r := range refs {
			if a.Column.Name.L == r.Table.Key && (a.Column.Table.L == "" || a.Column.Table.L == r.alias || a.Column.Table.L == r.Node.Name.L) {
				return sqlerr.NotSupported("changing shard key %s of %s with UPDATE (the row would move shards; delete and insert it instead)", r.Table.Key, r.Table.Name)
			}
		}
	}
	return nil
}

func whereOf(st ast.StmtNode) ast.ExprNode {
	switch n := st.(type) {
	case *ast.SelectStmt:
		return n.Where
	case *ast.UpdateStmt:
		return n.Where
	case *ast.DeleteStmt:
		return n.Where
	}
	return nil
}

// IsWrite reports whether st writes: INSERT, UPDATE, DELETE and DDL.
func IsWrite(st ast.StmtNode) bool {
	switch st.(type) {
	case *ast.InsertStmt, *ast.UpdateStmt, *ast.DeleteStmt:
		return true
	}
	return isDDL(st)
}

func isDDL(st ast.StmtNode) bool {
	_, ok := st.(ast.DDLNode)
	return ok
}

// targetTable is the table a write changes (the first table of UPDATE/DELETE/INSERT).
func targetTable(st ast.StmtNode) *ast.TableName {
	if !IsWrite(st) || isDDL(st) {
		return nil
	}
	refs := tableRefsOf(st)
	if refs == nil || refs.TableRefs == nil {
		return nil
	}
	if ts, ok := refs.TableRefs.Left.(*ast.TableSource); ok {
		if tn, ok := ts.Source.(*ast.TableName); ok {
			return tn
		}
	}
	return nil
}
