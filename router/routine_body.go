package router

import (
	"reflect"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/barrier"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// A stored procedure runs with the privileges of its definer, by default the proxy's backend
// account, so every statement and expression of its body must pass the barrier as if the
// client had sent it. The parser's visitors skip the statements of compound bodies (BEGIN
// ... END, IF, CASE, loops: "Store Procedure doesn't check the justifiability for
// statements"), so the body is walked by reflection instead: every node in it, at any depth,
// goes through barrier.Statement and the analyzer.

// maxRoutineDepth bounds the walk of a body (a deeper one is refused).
const maxRoutineDepth = 2000

// checkRoutineBody checks every node of a stored program's body.
func (pl *planner) checkRoutineBody(snap *rules.Snapshot, body ast.Node) error {
	a := &analyzer{pl: pl, snap: snap, ctes: map[string]bool{}, sources: map[*ast.TableName]*ast.TableSource{}}
	var err error
	ok := walkNodes(reflect.ValueOf(body), 0, func(n ast.Node) bool {
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

// walkNodes calls visit on every ast.Node reachable from v through exported fields,
// pointers, interfaces, slices and arrays, parents first. It returns false when visit did
// or the depth passed maxRoutineDepth.
func walkNodes(v reflect.Value, depth int, visit func(ast.Node) bool) bool {
	if depth > maxRoutineDepth {
		return false
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return true
		}
		return walkNodes(v.Elem(), depth+1, visit)
	case reflect.Pointer:
		if v.IsNil() {
			return true
		}
		if n, ok := v.Interface().(ast.Node); ok && !visit(n) {
			return false
		}
		return walkNodes(v.Elem(), depth+1, visit)
	case reflect.Struct:
		t := v.Type()
		for i := range v.NumField() {
			if t.Field(i).IsExported() && !walkNodes(v.Field(i), depth+1, visit) {
				return false
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if !walkNodes(v.Index(i), depth+1, visit) {
				return false
			}
		}
	}
	return true
}
