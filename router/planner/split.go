package planner

import (
	"slices"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// planMultiWrite plans st as a multi-shard write when it is one; ok reports whether it did
// (or failed doing so). attrs are the statement's; a write that turns out to be one
// statement on one shard is planned as that Route.
func (pl *Planner) planMultiWrite(attrs plan.Attrs, text string, st ast.StmtNode, a *Analyzer, params []wire.Param) (p plan.Primitive, ok bool, err error) {
	if !IsWrite(st) || isDDL(st) {
		return nil, false, nil
	}
	w := &plan.MultiWrite{Attrs: attrs}
	ok, err = pl.planBranches(w, text, st, a, params)
	if !ok || err != nil {
		return nil, ok, err
	}
	if len(w.Branches) == 1 && len(w.Branches[0].Stmts) == 1 {
		return &plan.Route{Attrs: attrs, Shard: w.Branches[0].Shard, SQL: w.Branches[0].Stmts[0].SQL}, true, nil
	}
	return w, true, nil
}

// planBranches fills w's branches when st, a write, spans shards; ok reports whether it
// does (or failed planning as such).
func (pl *Planner) planBranches(w *plan.MultiWrite, text string, st ast.StmtNode, a *Analyzer, params []wire.Param) (ok bool, err error) {
	target := targetTable(st)
	var tref *TableRef
	for i := range a.Refs {
		if a.Refs[i].Node == target {
			tref = &a.Refs[i]
		}
	}
	if tref == nil {
		return false, nil
	}
	ins, isIns := st.(*ast.InsertStmt)
	if !isIns && whereOf(st) == nil && tref.Table.ForbidFullTableWrites && tref.Table.Kind != rules.KindSingle {
		return true, sqlerr.New(sqlerr.ErUpdateWithoutKey,
			"You are using safe update mode and you tried to update a table without a WHERE that uses a KEY column: UPDATE/DELETE of every row of %s %s is forbidden (full_table_writes: forbid)", tref.Table.Kind, tref.Table.Name)
	}
	switch tref.Table.Kind {
	case rules.KindBroadcast:
		for _, r := range a.Refs {
			if r.Table.Kind != rules.KindBroadcast {
				return false, nil // routeSharded refuses mixing
			}
		}
		if isIns && ins.Select != nil {
			return false, nil
		}
		if f := nondeterministic(st); f != "" {
			return true, sqlerr.NotSupported("%s() in a write to broadcast table %s (every copy must get the same value)", f, tref.Table.Name)
		}
		return true, pl.planBroadcastWrite(w, text, st, a, tref.Table, params)
	case rules.KindSharded:
		if !isIns {
			return pl.planSpreadWrite(w, st, a, *tref, params)
		}
		if len(a.Refs) != 1 {
			return false, nil
		}
		rowSlots, err := InsertRowSlots(ins, *tref, params)
		switch {
		case err == errNeedsParams:
			return false, nil // prepare time: routeSharded describes it from slot 0
		case err != nil:
			return true, err
		}
		if len(distinct(rowSlots)) < 2 {
			return false, nil
		}
		return true, pl.planSplitInsert(w, ins, a, *tref, rowSlots, params)
	}
	return false, nil
}

func distinct(xs []int) []int {
	out := slices.Clone(xs)
	slices.Sort(out)
	return slices.Compact(out)
}

// planSpreadWrite plans an UPDATE or DELETE of one sharded table whose WHERE names no
// single slot (no shard key, or keys of several slots): the statement runs on every
// physical table that may hold its rows (each slot's table in table-per-slot layouts, else
// once per shard). ok is false when it is not such a statement (routeSharded decides).
func (pl *Planner) planSpreadWrite(w *plan.MultiWrite, st ast.StmtNode, a *Analyzer, r TableRef, params []wire.Param) (ok bool, err error) {
	var multi, limited bool
	switch n := st.(type) {
	case *ast.UpdateStmt:
		multi, limited = n.MultipleTable, n.Order != nil || n.Limit != nil
	case *ast.DeleteStmt:
		multi, limited = n.IsMultiTable, n.Order != nil || n.Limit != nil
	default:
		return false, nil
	}
	if multi || len(a.Refs) != 1 {
		return false, nil // joins and subqueries: routeSharded decides
	}
	vals, keyed, err := pl.keyValues(whereOf(st), r, params)
	switch {
	case err == errNeedsParams:
		return false, nil // prepare time: described from slot 0, routed at each execution
	case err != nil:
		return true, err
	}
	slots := make([]int, r.Table.Scheme.Func.Slots())
	for i := range slots {
		slots[i] = i
	}
	if keyed {
		if slots, err = slotsOf(r.Table, vals); err != nil {
			return true, err
		}
		if len(slots) < 2 {
			return false, nil
		}
		slices.Sort(slots)
	}
	if limited {
		return true, sqlerr.NotSupported("UPDATE or DELETE of sharded table %s with ORDER BY or LIMIT over several shards (each shard would apply its own)", r.Table.Name)
	}
	if u, isUpd := st.(*ast.UpdateStmt); isUpd {
		if err := checkKeyNotUpdated(u, []TableRef{r}); err != nil {
			return true, err
		}
	}
	_, isDelete := st.(*ast.DeleteStmt)
	idx := make([]int, len(a.Markers))
	for i := range idx {
		idx[i] = i
	}
	done := map[string]bool{} // shard and physical table already written
	for _, slot := range slots {
		shard, phys := r.Table.Scheme.SlotShard(slot), r.Table.PhysicalName(slot)
		if key := shard.Name + "\x00" + phys; !done[key] {
			done[key] = true
			a.ed.rename(r, phys, !isDelete)
			sql, err := pl.restoreFor(shard, a, st)
			if err != nil {
				return true, err
			}
			w.Add(shard, plan.WriteStmt{SQL: sql, Params: params, ParamIdx: idx})
		}
	}
	return true, nil
}

// planSplitInsert plans one INSERT per slot holding rows of ins.
func (pl *Planner) planSplitInsert(w *plan.MultiWrite, ins *ast.InsertStmt, a *Analyzer, r TableRef, rowSlots []int, params []wire.Param) error {
	rows := ins.Lists
	m := a.ed.mark()
	defer a.ed.undoTo(m)
	rowMarkers := make([][]*test_driver.ParamMarkerExpr, len(rows))
	inRow := map[*test_driver.ParamMarkerExpr]bool{}
	for i, row := range rows {
		for _, e := range row {
			rowMarkers[i] = append(rowMarkers[i], markersIn(e)...)
		}
		for _, m := range rowMarkers[i] {
			inRow[m] = true
		}
	}
	var shared []*test_driver.ParamMarkerExpr // outside VALUES (ON DUPLICATE KEY UPDATE)
	for _, m := range a.Markers {
		if !inRow[m] {
			shared = append(shared, m)
		}
	}
	var order []int // slots in the order of their first row
	bySlot := map[int][]int{}
	for i, slot := range rowSlots {
		if _, ok := bySlot[slot]; !ok {
			order = append(order, slot)
		}
		bySlot[slot] = append(bySlot[slot], i)
	}
	for _, slot := range order {
		shard := r.Table.Scheme.SlotShard(slot)
		lists := make([][]ast.ExprNode, 0, len(bySlot[slot]))
		kept := slices.Clone(shared)
		for _, i := range bySlot[slot] {
			lists = append(lists, rows[i])
			kept = append(kept, rowMarkers[i]...)
		}
		set(&a.ed, &ins.Lists, lists)
		a.ed.rename(r, r.Table.PhysicalName(slot), false)
		sql, err := pl.restoreFor(shard, a, ins)
		if err != nil {
			return err
		}
		bs := plan.WriteStmt{SQL: sql, FirstRow: bySlot[slot][0]}
		slices.SortFunc(kept, func(x, y *test_driver.ParamMarkerExpr) int { return x.Order - y.Order })
		for _, m := range kept {
			bs.ParamIdx = append(bs.ParamIdx, m.Order)
			if params != nil {
				bs.Params = append(bs.Params, params[m.Order])
			}
		}
		w.Add(shard, bs)
	}
	return nil
}

// planBroadcastWrite plans st on every shard of the broadcast table's database, the default
// shard first. On a database of one shard it is one statement (planMultiWrite makes it a
// Route).
func (pl *Planner) planBroadcastWrite(w *plan.MultiWrite, text string, st ast.StmtNode, a *Analyzer, t *rules.Table, params []wire.Param) error {
	shards := []*rules.Shard{t.DB.DefaultShard}
	for _, sh := range t.DB.Shards() {
		if sh != t.DB.DefaultShard {
			shards = append(shards, sh)
		}
	}
	idx := make([]int, len(a.Markers))
	for i := range idx {
		idx[i] = i
	}
	for _, sh := range shards {
		sql := text
		if a.rewrite || len(a.schemas) > 0 {
			var err error
			if sql, err = pl.restoreFor(sh, a, st); err != nil {
				return err
			}
		}
		w.Add(sh, plan.WriteStmt{SQL: sql, Params: params, ParamIdx: idx})
	}
	w.Copies = true
	return nil
}

// restoreFor writes st back as SQL for shard: schema qualifiers name its physical database.
func (pl *Planner) restoreFor(shard *rules.Shard, a *Analyzer, st ast.Node) (string, error) {
	for _, ref := range a.schemas {
		a.ed.name(ref, ast.NewCIStr(shard.Database))
	}
	a.ed.nameFields(a.unnamed)
	return pl.Restore(st)
}

// markersIn returns the ? placeholders inside e.
func markersIn(e ast.Node) []*test_driver.ParamMarkerExpr {
	var c MarkerCollector // bind.go
	e.Accept(&c)
	return c
}

// nondeterministic names a function in st whose value would differ between the copies of
// a broadcast table, or returns "".
func nondeterministic(st ast.Node) string {
	var f funcFinder
	st.Accept(&f)
	return f.name
}

type funcFinder struct{ name string }

func (f *funcFinder) Enter(n ast.Node) (ast.Node, bool) {
	if fc, ok := n.(*ast.FuncCallExpr); ok && f.name == "" {
		switch fc.FnName.L {
		case "rand", "uuid", "uuid_short", "sys_guid":
			f.name = fc.FnName.O
		}
	}
	return n, f.name != ""
}

func (f *funcFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }
