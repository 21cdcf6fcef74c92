package router

import (
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// Which rows a stored program's body may name in a database whose rows live on several
// shards. A program runs on the backend where it exists and sees that backend's rows only, so
// its body is correct only where every row it names is on that backend (stored_sharded.go
// creates it there). By where the program lives:
//
//   - on the default shard (a trigger on a single table, an event, a procedure, whose CALL
//     goes to the default shard): single tables, read and written, and broadcast tables,
//     read (a write would change one copy only);
//   - on every copy of a broadcast table (a trigger on it): broadcast tables, read and
//     written (the statement that fires it writes every copy, so each copy's trigger writes
//     the same change to every copy);
//   - on every shard (a stored function, callable in statements routed to any shard):
//     broadcast tables, read only;
//   - on every shard of a sharded table (a trigger on it, fired on the shard holding the
//     row): broadcast tables, read only, and sharded tables of the same scheme (the same
//     slots on the same shards) whose rows each statement pins to the firing row's shard key:
//     a WHERE that is a conjunction holding `key = NEW.k` (or OLD.k; k the trigger table's
//     key), an INSERT ... VALUES whose key column is NEW.k (OLD.k) in every row. A row with
//     the same key value has the same slot, so it is on the same shard. The body must not
//     assign NEW.k (the row would then belong to another shard) nor change a key.
//
// Table-per-slot tables are named by slot (orders_0007): a body may name one only in a
// trigger on a table-per-slot table of the same scheme, pinned to the firing row's key, whose
// copy on each slot table then names that slot's table (stored_slots.go). CALL is allowed on the default shard
// only (procedures live there), and DATABASE() and CONNECTION_ID() nowhere (the shard's
// physical database and connection, not the client's).

// programHome is where a program lives.
type programHome int

const (
	homeDefault   programHome = iota // the database's default shard
	homeBroadcast                    // every copy of a broadcast table
	homeEveryShard
	homeSharded // every shard of a sharded table, fired for the rows it holds
)

// programScope is what checkScope needs to know of a program.
type programScope struct {
	what  string // "trigger", "function", ... for messages
	home  programHome
	table *rules.Table
	event string // a trigger's INSERT, UPDATE or DELETE
	// declared are the body's local variables (lower-cased): an unqualified name that is one
	// of them is the variable, not a column (MariaDB's rule in stored programs).
	declared map[string]bool
	// slotTables collects the table-per-slot tables a trigger on a table-per-slot table names
	// (each copy names its own slot's tables, stored_slots.go).
	slotTables map[string]bool
}

// bodyUse is what a statement of the body does to a table it names directly.
type bodyUse struct {
	write, pinned bool
}

// checkScope checks that body names only tables whose rows are where the program lives, and
// returns the table-per-slot tables it names (see programScope.slotTables).
func checkScope(db *rules.Database, body ast.Node, sc programScope) ([]string, error) {
	uses := map[*ast.TableName]bodyUse{}
	sc.declared, sc.slotTables = map[string]bool{}, map[string]bool{}
	walkNodes(reflect.ValueOf(body), 0, func(n ast.Node) bool {
		if d, ok := n.(*ast.ProcedureDecl); ok {
			for _, name := range d.DeclNames {
				sc.declared[strings.ToLower(name)] = true
			}
		}
		return true
	})
	var err error
	ok := walkNodes(reflect.ValueOf(body), 0, func(n ast.Node) bool {
		err = scopeNode(db, n, sc, uses)
		return err == nil
	})
	if err == nil && !ok {
		err = sqlerr.NotSupported("a %s body nested this deeply", sc.what)
	}
	if err != nil {
		return nil, err
	}
	ok = walkNodes(reflect.ValueOf(body), 0, func(n ast.Node) bool {
		if tn, isName := n.(*ast.TableName); isName {
			u, found := uses[tn]
			if !found {
				u = bodyUse{write: true} // named by a statement of another kind (DDL, ...): assume the worst
			}
			err = tableInScope(db, tn, u, sc)
		}
		return err == nil
	})
	if err == nil && !ok {
		err = sqlerr.NotSupported("a %s body nested this deeply", sc.what)
	}
	return slices.Sorted(maps.Keys(sc.slotTables)), err
}

// scopeNode records the tables a statement names directly and refuses what no home allows.
func scopeNode(db *rules.Database, n ast.Node, sc programScope, uses map[*ast.TableName]bodyUse) error {
	switch n := n.(type) {
	case *ast.CallStmt:
		if sc.home != homeDefault {
			return sqlerr.NotSupported("CALL in a %s body in a database with sharded tables: procedures live on the default shard, the %s runs on others", sc.what, sc.what)
		}
	case *ast.FuncCallExpr:
		switch n.FnName.L {
		case "database", "schema", "connection_id":
			return sqlerr.NotSupported("%s() in a %s body in a database with sharded tables: it would give the shard's physical database or connection", strings.ToUpper(n.FnName.O), sc.what)
		}
	case *ast.VariableAssignment:
		if sc.home == homeSharded && strings.EqualFold(n.Name, "new."+sc.table.Key) {
			return sqlerr.NotSupported("a trigger setting NEW.%s, the shard key of %s: the row would belong to another shard", sc.table.Key, sc.table.Name)
		}
	case *ast.SelectStmt:
		if n.From != nil {
			recordUses(db, n.From.TableRefs, n.Where, false, sc, uses)
		}
	case *ast.UpdateStmt:
		if n.TableRefs != nil {
			refs := recordUses(db, n.TableRefs.TableRefs, n.Where, true, sc, uses)
			if changesKey(db, refs, n.List) {
				return sqlerr.NotSupported("a %s body changing the shard key of a sharded table", sc.what)
			}
		}
	case *ast.DeleteStmt:
		if n.TableRefs != nil {
			recordUses(db, n.TableRefs.TableRefs, n.Where, true, sc, uses)
		}
	case *ast.InsertStmt:
		if n.Table != nil {
			refs := recordUses(db, n.Table.TableRefs, nil, true, sc, uses)
			if len(refs) == 1 {
				tn := refs[0]
				uses[tn] = bodyUse{write: true, pinned: insertPinned(db.Table(tn.Name.O), n, sc)}
				if changesKey(db, refs, n.OnDuplicate) {
					return sqlerr.NotSupported("a %s body changing the shard key of a sharded table", sc.what)
				}
			}
		}
	}
	return nil
}

// recordUses records the tables named directly in from (not in subqueries, which are
// statements of their own) as read or written, pinned when where holds the firing row's key.
func recordUses(db *rules.Database, from *ast.Join, where ast.ExprNode, write bool, sc programScope, uses map[*ast.TableName]bodyUse) []*ast.TableName {
	var names []*ast.TableName
	var aliases []string
	var collect func(ast.ResultSetNode)
	collect = func(r ast.ResultSetNode) {
		switch r := r.(type) {
		case *ast.Join:
			if r.Left != nil {
				collect(r.Left)
			}
			if r.Right != nil {
				collect(r.Right)
			}
		case *ast.TableSource:
			if tn, ok := r.Source.(*ast.TableName); ok {
				names = append(names, tn)
				alias := tn.Name.L
				if r.AsName.L != "" {
					alias = r.AsName.L
				}
				aliases = append(aliases, alias)
			}
		case *ast.TableName:
			names, aliases = append(names, r), append(aliases, r.Name.L)
		}
	}
	if from != nil {
		collect(from)
	}
	for i, tn := range names {
		t := db.Table(tn.Name.O)
		pinned := sc.home == homeSharded && t.Kind == rules.KindSharded &&
			wherePins(where, t.Key, aliases[i], len(names) == 1, sc)
		uses[tn] = bodyUse{write: write, pinned: pinned}
	}
	return names
}

// wherePins reports whether where is a conjunction holding `key = NEW.k` (OLD.k) for the
// table of alias (its only table when single).
func wherePins(where ast.ExprNode, key, alias string, single bool, sc programScope) bool {
	for _, c := range conjuncts(where) {
		b, ok := c.(*ast.BinaryOperationExpr)
		if !ok || (b.Op != opcode.EQ && b.Op != opcode.NullEQ) {
			continue
		}
		for _, side := range [][2]ast.ExprNode{{b.L, b.R}, {b.R, b.L}} {
			col, isCol := side[0].(*ast.ColumnNameExpr)
			if !isCol || col.Name.Schema.L != "" || col.Name.Name.L != key {
				continue
			}
			if q := col.Name.Table.L; !(q == alias || q == "" && single && !sc.declared[key]) {
				continue
			}
			if firingKey(side[1], sc) {
				return true
			}
		}
	}
	return false
}

// conjuncts splits e at its top-level ANDs.
func conjuncts(e ast.ExprNode) []ast.ExprNode {
	switch n := e.(type) {
	case nil:
		return nil
	case *ast.ParenthesesExpr:
		return conjuncts(n.Expr)
	case *ast.BinaryOperationExpr:
		if n.Op == opcode.LogicAnd {
			return append(conjuncts(n.L), conjuncts(n.R)...)
		}
	}
	return []ast.ExprNode{e}
}

// firingKey reports whether e is the firing row's shard key: NEW.k for INSERT and UPDATE
// triggers, OLD.k for UPDATE and DELETE triggers (an UPDATE through the proxy never changes
// k, and the body may not assign NEW.k).
func firingKey(e ast.ExprNode, sc programScope) bool {
	for {
		p, ok := e.(*ast.ParenthesesExpr)
		if !ok {
			break
		}
		e = p.Expr
	}
	col, ok := e.(*ast.ColumnNameExpr)
	if !ok || col.Name.Schema.L != "" || col.Name.Name.L != sc.table.Key {
		return false
	}
	switch col.Name.Table.L {
	case "new":
		return sc.event != "DELETE"
	case "old":
		return sc.event != "INSERT"
	}
	return false
}

// insertPinned reports whether an INSERT into t puts only rows with the firing row's key.
func insertPinned(t *rules.Table, n *ast.InsertStmt, sc programScope) bool {
	if sc.home != homeSharded || t.Kind != rules.KindSharded || n.Select != nil {
		return false
	}
	at := -1 // INSERT ... SET is read as a column list and one row

	for i, c := range n.Columns {
		if c.Name.L == t.Key {
			at = i
		}
	}
	if at < 0 || len(n.Lists) == 0 {
		return false
	}
	for _, row := range n.Lists {
		if at >= len(row) || !firingKey(row[at], sc) {
			return false
		}
	}
	return true
}

// changesKey reports whether assignments set the shard key of a sharded table among refs.
func changesKey(db *rules.Database, refs []*ast.TableName, list []*ast.Assignment) bool {
	for _, a := range list {
		for _, tn := range refs {
			if t := db.Table(tn.Name.O); t.Kind == rules.KindSharded && a.Column.Name.L == t.Key {
				return true
			}
		}
	}
	return false
}

// tableInScope checks one table the body names, used as u.
func tableInScope(db *rules.Database, tn *ast.TableName, u bodyUse, sc programScope) error {
	if tn.Schema.O != "" {
		return sqlerr.NotSupported("a %s body naming %s.%s in a database with sharded tables: name only tables of the session's database, unqualified", sc.what, tn.Schema.O, tn.Name.O)
	}
	t := db.Table(tn.Name.O)
	if t.Kind == rules.KindSharded && t.TablePerSlot {
		if sc.home != homeSharded || !sc.table.TablePerSlot || t.Scheme != sc.table.Scheme || !u.pinned {
			return sqlerr.NotSupported("a %s naming the table-per-slot table %s: each slot's table has its own name, which only a trigger on a table-per-slot table of the same scheme knows (its own slot's), with %s pinned to the row's shard key", sc.what, t.Name, t.Name)
		}
		sc.slotTables[t.Name] = true
		return nil
	}
	switch sc.home {
	case homeDefault:
		switch {
		case t.Kind == rules.KindSharded:
			return sqlerr.NotSupported("a %s naming the sharded table %s: it lives on the default shard, which holds only some of its rows", sc.what, t.Name)
		case t.Kind == rules.KindBroadcast && u.write:
			return sqlerr.NotSupported("a %s writing the broadcast table %s: it lives on the default shard, so only that copy would change", sc.what, t.Name)
		}
	case homeBroadcast:
		if t.Kind != rules.KindBroadcast {
			return sqlerr.NotSupported("a trigger on the broadcast table %s naming the %s table %s: it fires on every copy, and %s's rows are not on every shard", sc.table.Name, t.Kind, t.Name, t.Name)
		}
	case homeEveryShard:
		switch {
		case t.Kind != rules.KindBroadcast:
			return sqlerr.NotSupported("a %s naming the %s table %s in a database with sharded tables: it exists on every shard, where %s's rows are not (only broadcast tables, read)", sc.what, t.Kind, t.Name, t.Name)
		case u.write:
			return sqlerr.NotSupported("a %s writing the broadcast table %s: called on one shard, it would change that copy only", sc.what, t.Name)
		}
	case homeSharded:
		switch {
		case t.Kind == rules.KindBroadcast && u.write:
			return sqlerr.NotSupported("a trigger on the sharded table %s writing the broadcast table %s: it fires on one shard, so only that copy would change", sc.table.Name, t.Name)
		case t.Kind == rules.KindSingle:
			return sqlerr.NotSupported("a trigger on the sharded table %s naming the single table %s: it fires on the shard of the row, and %s lives on the default shard only", sc.table.Name, t.Name, t.Name)
		case t.Kind == rules.KindSharded && t.Scheme != sc.table.Scheme:
			return sqlerr.NotSupported("a trigger on the sharded table %s naming %s, sharded by another scheme: its rows are on other shards", sc.table.Name, t.Name)
		case t.Kind == rules.KindSharded && !u.pinned:
			return sqlerr.NotSupported("a trigger on the sharded table %s naming %s without pinning it to the row's shard key (%s = NEW.%s or OLD.%s in the WHERE, or NEW.%[3]s as %[3]s in INSERT ... VALUES): other rows may be on other shards", sc.table.Name, t.Name, t.Key, sc.table.Key)
		}
	}
	return nil
}
