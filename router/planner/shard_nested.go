package planner

import (
	"slices"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// routeNested places a statement with sharded tables inside subqueries or derived tables:
// when every sharded table, at the top and nested, is pinned to one slot by its shard key
// (key = value, key IN (...) within one slot) in the WHERE of its own SELECT (or UPDATE,
// DELETE), all on the same shard, the whole statement runs there, each table renamed to
// that slot's physical table. Anything else is refused with the reason: the subquery's rows
// may be on every shard.
func (pl *Planner) routeNested(ed *edits, st ast.StmtNode, refs, sharded, nested []TableRef, params []wire.Param) (*rules.Shard, error) {
	wheres := blockWheres(st)
	first := nested[0]
	if len(sharded) > 0 {
		first = sharded[0]
	}
	slot := -1
	for _, r := range append(slices.Clone(sharded), nested...) {
		vals, ok, err := pl.keyValues(wheres[r.Node], r, params)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, nestedRefusal{sqlerr.NotSupported("sharded table %s in a statement with subqueries, without %s = value (or an IN list within one slot) in the WHERE of its own SELECT: its rows may be on every shard",
				r.Table.Name, r.Table.Key)}
		}
		if r.Table.Scheme != first.Table.Scheme {
			return nil, nestedRefusal{sqlerr.NotSupported("a statement with subqueries over tables sharded by different schemes (%s, %s)", first.Table.Name, r.Table.Name)}
		}
		slots, err := slotsOf(r.Table, vals)
		if err != nil {
			return nil, err
		}
		if len(slots) != 1 || (slot >= 0 && slots[0] != slot) {
			return nil, nestedRefusal{sqlerr.NotSupported("a statement with subqueries whose sharded tables' keys name several slots (%s): rows would have to meet across shards", r.Table.Name)}
		}
		slot = slots[0]
	}
	if u, ok := st.(*ast.UpdateStmt); ok {
		if err := checkKeyNotUpdated(u, sharded); err != nil {
			return nil, err
		}
	}
	shard := first.Table.Scheme.SlotShard(slot)
	_, isDelete := st.(*ast.DeleteStmt)
	for _, r := range sharded {
		ed.rename(r, r.Table.PhysicalName(slot), !isDelete)
	}
	for _, r := range nested {
		ed.rename(r, r.Table.PhysicalName(slot), true)
	}
	return shard, checkSingles(refs, shard)
}

// blockWheres maps each table a statement names to the WHERE of the SELECT, UPDATE or
// DELETE whose FROM names it (nil for none).
func blockWheres(st ast.StmtNode) map[*ast.TableName]ast.ExprNode {
	v := &blockVisitor{out: map[*ast.TableName]ast.ExprNode{}}
	st.Accept(v)
	return v.out
}

type blockVisitor struct {
	stack []ast.ExprNode
	out   map[*ast.TableName]ast.ExprNode
}

func (v *blockVisitor) Enter(n ast.Node) (ast.Node, bool) {
	switch n := n.(type) {
	case *ast.SelectStmt:
		v.stack = append(v.stack, n.Where)
	case *ast.UpdateStmt:
		v.stack = append(v.stack, n.Where)
	case *ast.DeleteStmt:
		v.stack = append(v.stack, n.Where)
	case *ast.TableName:
		if len(v.stack) > 0 {
			v.out[n] = v.stack[len(v.stack)-1]
		}
	}
	return n, false
}

func (v *blockVisitor) Leave(n ast.Node) (ast.Node, bool) {
	switch n.(type) {
	case *ast.SelectStmt, *ast.UpdateStmt, *ast.DeleteStmt:
		v.stack = v.stack[:len(v.stack)-1]
	}
	return n, true
}
