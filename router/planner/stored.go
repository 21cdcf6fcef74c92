package planner

import (
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	"github.com/shardproxy/shardproxy/router/barrier"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// programHome is where a program lives.
type programHome int

const (
	HomeDefault    programHome = iota // the database's default shard
	HomeBroadcast                     // every copy of a broadcast table
	HomeEveryShard                    // every shard of the database (stored functions)
	HomeSharded                       // every shard of a sharded table, fired for the rows it holds
)

// ProgramScope is what checkScope needs to know of a program.
type ProgramScope struct {
	What  string // "trigger", "function", ... for messages
	Home  programHome
	Table *rules.Table
	Event string // a trigger's INSERT, UPDATE or DELETE
	// declared are the body's local variables (lower-cased): an unqualified name that is one
	// of them is the variable, not a column (MariaDB's rule in stored programs).
	declared map[string]bool
	// slotTables collects the table-per-slot tables a trigger on a table-per-slot table names
	// (each copy names its own slot's tables, program_targets.go).
	slotTables map[string]bool
}

// bodyUse is what a statement of the body does to a table it names directly.
type bodyUse struct {
	write, pinned bool
}

// CheckScope checks that body names only tables whose rows are where the program lives, and
// returns the table-per-slot tables it names (see programScope.slotTables).
func CheckScope(db *rules.Database, body ast.Node, sc ProgramScope) ([]string, error) {
	uses := map[*ast.TableName]bodyUse{}
	sc.declared, sc.slotTables = map[string]bool{}, map[string]bool{}
	WalkNodes(reflect.ValueOf(body), 0, func(n ast.Node) bool {
		if d, ok := n.(*ast.ProcedureDecl); ok {
			for _, name := range d.DeclNames {
				sc.declared[strings.ToLower(name)] = true
			}
		}
		return true
	})
	var err error
	ok := WalkNodes(reflect.ValueOf(body), 0, func(n ast.Node) bool {
		err = scopeNode(db, n, sc, uses)
		return err == nil
	})
	if err == nil && !ok {
		err = sqlerr.NotSupported("a %s body nested this deeply", sc.What)
	}
	if err != nil {
		return nil, err
	}
	ok = WalkNodes(reflect.ValueOf(body), 0, func(n ast.Node) bool {
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
		err = sqlerr.NotSupported("a %s body nested this deeply", sc.What)
	}
	return slices.Sorted(maps.Keys(sc.slotTables)), err
}

// scopeNode records the tables a statement names directly and refuses what no home allows.
func scopeNode(db *rules.Database, n ast.Node, sc ProgramScope, uses map[*ast.TableName]bodyUse) error {
	switch n := n.(type) {
	case *ast.CallStmt:
		if sc.Home != HomeDefault {
			return sqlerr.NotSupported("CALL in a %s body in a database with sharded tables: procedures live on the default shard, the %s runs on others", sc.What, sc.What)
		}
	case *ast.FuncCallExpr:
		switch n.FnName.L {
		case "database", "schema", "connection_id":
			return sqlerr.NotSupported("%s() in a %s body in a database with sharded tables: it would give the shard's physical database or connection", strings.ToUpper(n.FnName.O), sc.What)
		}
	case *ast.VariableAssignment:
		if sc.Home == HomeSharded && strings.EqualFold(n.Name, "new."+sc.Table.Key) {
			return sqlerr.NotSupported("a trigger setting NEW.%s, the shard key of %s: the row would belong to another shard", sc.Table.Key, sc.Table.Name)
		}
	case *ast.SelectStmt:
		if n.From != nil {
			recordUses(db, n.From.TableRefs, n.Where, false, sc, uses)
		}
	case *ast.UpdateStmt:
		if n.TableRefs != nil {
			refs := recordUses(db, n.TableRefs.TableRefs, n.Where, true, sc, uses)
			if changesKey(db, refs, n.List) {
				return sqlerr.NotSupported("a %s body changing the shard key of a sharded table", sc.What)
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
					return sqlerr.NotSupported("a %s body changing the shard key of a sharded table", sc.What)
				}
			}
		}
	}
	return nil
}

// recordUses records the tables named directly in from (not in subqueries, which are
// statements of their own) as read or written, pinned when where holds the firing row's key.
func recordUses(db *rules.Database, from *ast.Join, where ast.ExprNode, write bool, sc ProgramScope, uses map[*ast.TableName]bodyUse) []*ast.TableName {
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
		pinned := sc.Home == HomeSharded && t.Kind == rules.KindSharded &&
			wherePins(where, t.Key, aliases[i], len(names) == 1, sc)
		uses[tn] = bodyUse{write: write, pinned: pinned}
	}
	return names
}

// wherePins reports whether where is a conjunction holding `key = NEW.k` (OLD.k) for the
// table of alias (its only table when single).
func wherePins(where ast.ExprNode, key, alias string, single bool, sc ProgramScope) bool {
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
func firingKey(e ast.ExprNode, sc ProgramScope) bool {
	for {
		p, ok := e.(*ast.ParenthesesExpr)
		if !ok {
			break
		}
		e = p.Expr
	}
	col, ok := e.(*ast.ColumnNameExpr)
	if !ok || col.Name.Schema.L != "" || col.Name.Name.L != sc.Table.Key {
		return false
	}
	switch col.Name.Table.L {
	case "new":
		return sc.Event != "DELETE"
	case "old":
		return sc.Event != "INSERT"
	}
	return false
}

// insertPinned reports whether an INSERT into t puts only rows with the firing row's key.
func insertPinned(t *rules.Table, n *ast.InsertStmt, sc ProgramScope) bool {
	if sc.Home != HomeSharded || t.Kind != rules.KindSharded || n.Select != nil {
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
func tableInScope(db *rules.Database, tn *ast.TableName, u bodyUse, sc ProgramScope) error {
	if tn.Schema.O != "" {
		return sqlerr.NotSupported("a %s body naming %s.%s in a database with sharded tables: name only tables of the session's database, unqualified", sc.What, tn.Schema.O, tn.Name.O)
	}
	t := db.Table(tn.Name.O)
	if t.Kind == rules.KindSharded && t.TablePerSlot {
		if sc.Home != HomeSharded || !sc.Table.TablePerSlot || t.Scheme != sc.Table.Scheme || !u.pinned {
			return sqlerr.NotSupported("a %s naming the table-per-slot table %s: each slot's table has its own name, which only a trigger on a table-per-slot table of the same scheme knows (its own slot's), with %s pinned to the row's shard key", sc.What, t.Name, t.Name)
		}
		sc.slotTables[t.Name] = true
		return nil
	}
	switch sc.Home {
	case HomeDefault:
		switch {
		case t.Kind == rules.KindSharded:
			return sqlerr.NotSupported("a %s naming the sharded table %s: it lives on the default shard, which holds only some of its rows", sc.What, t.Name)
		case t.Kind == rules.KindBroadcast && u.write:
			return sqlerr.NotSupported("a %s writing the broadcast table %s: it lives on the default shard, so only that copy would change", sc.What, t.Name)
		}
	case HomeBroadcast:
		if t.Kind != rules.KindBroadcast {
			return sqlerr.NotSupported("a trigger on the broadcast table %s naming the %s table %s: it fires on every copy, and %s's rows are not on every shard", sc.Table.Name, t.Kind, t.Name, t.Name)
		}
	case HomeEveryShard:
		switch {
		case t.Kind != rules.KindBroadcast:
			return sqlerr.NotSupported("a %s naming the %s table %s in a database with sharded tables: it exists on every shard, where %s's rows are not (only broadcast tables, read)", sc.What, t.Kind, t.Name, t.Name)
		case u.write:
			return sqlerr.NotSupported("a %s writing the broadcast table %s: called on one shard, it would change that copy only", sc.What, t.Name)
		}
	case HomeSharded:
		switch {
		case t.Kind == rules.KindBroadcast && u.write:
			return sqlerr.NotSupported("a trigger on the sharded table %s writing the broadcast table %s: it fires on one shard, so only that copy would change", sc.Table.Name, t.Name)
		case t.Kind == rules.KindSingle:
			return sqlerr.NotSupported("a trigger on the sharded table %s naming the single table %s: it fires on the shard of the row, and %s lives on the default shard only", sc.Table.Name, t.Name, t.Name)
		case t.Kind == rules.KindSharded && t.Scheme != sc.Table.Scheme:
			return sqlerr.NotSupported("a trigger on the sharded table %s naming %s, sharded by another scheme: its rows are on other shards", sc.Table.Name, t.Name)
		case t.Kind == rules.KindSharded && !u.pinned:
			return sqlerr.NotSupported("a trigger on the sharded table %s naming %s without pinning it to the row's shard key (%s = NEW.%s or OLD.%s in the WHERE, or NEW.%[3]s as %[3]s in INSERT ... VALUES): other rows may be on other shards", sc.Table.Name, t.Name, t.Key, sc.Table.Key)
		}
	}
	return nil
}

// checkProcedureScope checks the body of a CREATE PROCEDURE in a database with rows on
// several shards: the procedure lives on the default shard, where CALL runs it.
func (pl *Planner) checkProcedureScope(snap *rules.Snapshot, n *ast.ProcedureInfo) error {
	name := n.ProcedureName.Schema.O
	if name == "" {
		name = pl.DB
	}
	db, ok := snap.Database(name)
	if !ok || !db.Sharded() && len(db.Shards()) < 2 {
		return nil
	}
	_, err := CheckScope(db, n.ProcedureBody, ProgramScope{What: "procedure", Home: HomeDefault})
	return err
}

// maxRoutineDepth bounds the walk of a body (a deeper one is refused).
const maxRoutineDepth = 2000

// CheckRoutineBody checks every node of a stored program's body.
func (pl *Planner) CheckRoutineBody(snap *rules.Snapshot, body ast.Node) error {
	a := pl.newAnalyzer(snap)
	defer a.ed.undo(body) // the analyzer's walk of each node edits names (VarAliases)
	var err error
	ok := WalkNodes(reflect.ValueOf(body), 0, func(n ast.Node) bool {
		if st, isStmt := n.(ast.StmtNode); isStmt {
			switch st.(type) {
			case *ast.PrepareStmt, *ast.ExecuteStmt, *ast.DeallocateStmt:
				err = sqlerr.NotSupported("dynamic SQL (PREPARE, EXECUTE) in a stored procedure created through the proxy: it could not check what runs")
				return false
			}
			if err = barrier.Statement(st); err != nil {
				return false
			}
		}
		a.Enter(n)
		err = a.err
		return err == nil
	})
	if err == nil && !ok {
		err = sqlerr.NotSupported("a stored procedure body nested this deeply")
	}
	return err
}

// WalkNodes calls visit on every ast.Node reachable from v through exported fields,
// pointers, interfaces, slices and arrays, parents first. It returns false when visit did
// or the depth passed maxRoutineDepth.
func WalkNodes(v reflect.Value, depth int, visit func(ast.Node) bool) bool {
	if depth > maxRoutineDepth {
		return false
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return true
		}
		return WalkNodes(v.Elem(), depth+1, visit)
	case reflect.Pointer:
		if v.IsNil() {
			return true
		}
		if n, ok := v.Interface().(ast.Node); ok && !visit(n) {
			return false
		}
		return WalkNodes(v.Elem(), depth+1, visit)
	case reflect.Struct:
		t := v.Type()
		for i := range v.NumField() {
			if t.Field(i).IsExported() && !WalkNodes(v.Field(i), depth+1, visit) {
				return false
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if !WalkNodes(v.Index(i), depth+1, visit) {
				return false
			}
		}
	}
	return true
}
