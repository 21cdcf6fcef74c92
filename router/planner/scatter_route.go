package planner

import (
	"errors"
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// ScatterSlots checks the sharded tables of a scatter SELECT and returns the slots it needs:
// all of them unless a key condition narrows them. Tables sharded together must be joined
// on their shard keys, so that each shard's rows join only with rows of the same shard.
func (pl *Planner) ScatterSlots(sel *ast.SelectStmt, sharded []TableRef, params []wire.Param) ([]int, error) {
	first := sharded[0].Table
	for _, r := range sharded[1:] {
		if r.Table.Scheme != first.Scheme {
			return nil, sqlerr.NotSupported("a join of %s and %s, sharded by different schemes, whose rows may be on every shard", first.Name, r.Table.Name)
		}
	}
	if len(sharded) > 1 {
		eq := newColClasses()
		eq.addConds(sel.Where)
		if sel.From != nil {
			eq.addJoin(sel.From.TableRefs)
		}
		root := eq.find(colKey{sharded[0].alias, sharded[0].Table.Key})
		for _, r := range sharded[1:] {
			if eq.find(colKey{r.alias, r.Table.Key}) != root {
				return nil, sqlerr.NotSupported("a join of sharded tables %s and %s not on their shard keys (%s.%s = %s.%s): rows would have to meet across shards",
					first.Name, r.Table.Name, sharded[0].alias, first.Key, r.alias, r.Table.Key)
			}
		}
	}
	if pl.Unpruned && pl.Slots != nil {
		return pl.Slots, nil // a scatter template of tables per slot: these slots (scatter_prepared.go)
	}
	var slots []int
	for _, r := range sharded {
		if pl.Unpruned {
			break // a scatter template: every slot (scatter_prepared.go)
		}
		vals, ok, err := pl.keyValues(sel.Where, r, params)
		if err != nil {
			return nil, err
		}
		var got []int
		if ok {
			if got, err = slotsOf(r.Table, vals); err != nil {
				return nil, err
			}
		} else if got, ok, err = rangeSlots(sel.Where, r, params); err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		slices.Sort(got)
		if slots == nil {
			slots = got
		} else {
			slots = intersect(slots, got)
		}
	}
	if slots == nil {
		slots = make([]int, first.Scheme.Func.Slots())
		for i := range slots {
			slots[i] = i
		}
	}
	return slots, nil
}

func intersect(a, b []int) []int {
	out := []int{}
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// colKey is a column qualified by its table's alias.
type colKey struct{ table, col string }

// colClasses groups columns known equal by the statement's conditions (union-find).
type colClasses struct{ parent map[colKey]colKey }

func newColClasses() *colClasses { return &colClasses{parent: map[colKey]colKey{}} }

func (c *colClasses) find(k colKey) colKey {
	for {
		p, ok := c.parent[k]
		if !ok || p == k {
			return k
		}
		k = p
	}
}

func (c *colClasses) union(a, b colKey) { c.parent[c.find(a)] = c.find(b) }

// addConds records col = col conjuncts.
func (c *colClasses) addConds(e ast.ExprNode) {
	switch e := e.(type) {
	case *ast.ParenthesesExpr:
		c.addConds(e.Expr)
	case *ast.BinaryOperationExpr:
		switch e.Op {
		case opcode.LogicAnd:
			c.addConds(e.L)
			c.addConds(e.R)
		case opcode.EQ:
			l, ok1 := e.L.(*ast.ColumnNameExpr)
			r, ok2 := e.R.(*ast.ColumnNameExpr)
			if ok1 && ok2 {
				c.union(colKey{l.Name.Table.L, l.Name.Name.L}, colKey{r.Name.Table.L, r.Name.Name.L})
			}
		}
	}
}

func (c *colClasses) addJoin(n ast.ResultSetNode) {
	j, ok := n.(*ast.Join)
	if !ok {
		return
	}
	c.addJoin(j.Left)
	if j.Right != nil {
		c.addJoin(j.Right)
	}
	if j.On != nil {
		c.addConds(j.On.Expr)
	}
	for _, u := range j.Using {
		l, r := joinSideAlias(j.Left), joinSideAlias(j.Right)
		if l != "" && r != "" {
			c.union(colKey{l, u.Name.L}, colKey{r, u.Name.L})
		}
	}
}

func joinSideAlias(n ast.ResultSetNode) string {
	if ts, ok := n.(*ast.TableSource); ok {
		if ts.AsName.L != "" {
			return ts.AsName.L
		}
		if tn, ok := ts.Source.(*ast.TableName); ok {
			return tn.Name.L
		}
	}
	return ""
}

// planScatter plans a SELECT over the slots its conditions allow. When they all live in
// one physical table set on one shard, the statement is renamed and that shard returned (no
// Scatter); otherwise the Scatter holds a statement per shard and the merge. At prepare time
// (planner.describing) it describes the statement from its first slot. Its edits of sel are
// logged in a.ed.
func (pl *Planner) planScatter(sel *ast.SelectStmt, a *Analyzer, params []wire.Param, attrs *plan.Attrs) (*plan.Scatter, *rules.Shard, error) {
	sharded, err := scatterTables(a)
	if err != nil {
		return nil, nil, err
	}
	slots, err := pl.ScatterSlots(sel, sharded, params)
	if errors.Is(err, errNeedsParams) && pl.Describing {
		slots, err = []int{0}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if len(slots) == 0 {
		slots = []int{0} // contradictory key conditions: any one shard answers "no rows"
	}
	scheme := sharded[0].Table.Scheme
	byShard, order := slotsByShard(scheme, slots)
	if pl.Describing || (len(order) == 1 && len(slotGroups(sharded, byShard[order[0]])) == 1) {
		slot := slots[0]
		for _, r := range sharded {
			a.ed.rename(r, r.Table.PhysicalName(slot), true)
		}
		attrs.Dynamic = attrs.Dynamic || pl.Describing
		return nil, scheme.SlotShard(slot), nil
	}
	shape, err := pl.shapeScatter(&a.ed, sel, sharded, params)
	if err != nil {
		return nil, nil, err
	}
	a.ed.nameFields(a.unnamed)
	sp := &plan.Scatter{Merge: &shape.plan}
	for _, sh := range order {
		t, err := pl.scatterTarget(a, shape, sharded, sh, byShard[sh])
		if err != nil {
			return nil, nil, err
		}
		sp.Targets = append(sp.Targets, t)
	}
	return sp, nil, nil
}

// scatterTables are the sharded tables of a scatter SELECT; it refuses single tables (on one
// shard only) and information_schema.
func scatterTables(a *Analyzer) ([]TableRef, error) {
	var sharded []TableRef
	for _, r := range a.Refs {
		switch r.Table.Kind {
		case rules.KindSharded:
			sharded = append(sharded, r)
		case rules.KindSingle:
			return nil, sqlerr.NotSupported("a query over several shards joining single table %s (it lives on shard %s only)", r.Table.Name, r.db.DefaultShard.Name)
		}
	}
	if a.InfoSchema {
		return nil, sqlerr.NotSupported("information_schema in a query over several shards")
	}
	return sharded, nil
}

// slotGroups groups slots of one shard by the physical tables they name: slots sharing
// physical names on a shard are one set of tables.
func slotGroups(sharded []TableRef, slots []int) [][]int {
	groups := map[string][]int{}
	var names []string
	for _, slot := range slots {
		n := physicalNames(sharded, slot)
		if groups[n] == nil {
			names = append(names, n)
		}
		groups[n] = append(groups[n], slot)
	}
	out := make([][]int, 0, len(names))
	for _, n := range names {
		out = append(out, groups[n])
	}
	return out
}

// scatterTarget is what shard sh runs of the scatter SELECT shape describes, over slots.
func (pl *Planner) scatterTarget(a *Analyzer, shape *scatterShape, sharded []TableRef, sh *rules.Shard, slots []int) (plan.Target, error) {
	build := func() (string, error) { return pl.shardSQL(a, shape, sharded, sh, slotGroups(sharded, slots)) }
	sql, err := build()
	if err != nil {
		return plan.Target{}, err
	}
	t := plan.Target{Shard: sh, Slots: slots, SQL: sql}
	if shape.plan.Branched {
		if t.Probe, err = branchedProbe(&a.ed, shape.sel, build); err != nil {
			return plan.Target{}, err
		}
	}
	return t, nil
}

// shardSQL is the statement of shard sh: the shaped SELECT on each group of its slots'
// tables, a UNION ALL of them (sorted and limited as the shape says) when there are several.
func (pl *Planner) shardSQL(a *Analyzer, shape *scatterShape, sharded []TableRef, sh *rules.Shard, groups [][]int) (string, error) {
	var parts []string
	for _, g := range groups {
		for _, r := range sharded {
			a.ed.rename(r, r.Table.PhysicalName(g[0]), true)
		}
		for _, ref := range a.schemas {
			a.ed.name(ref, ast.NewCIStr(sh.Database))
		}
		sql, err := pl.restoreUnionPart(&a.ed, shape.sel, len(parts))
		if err != nil {
			return "", err
		}
		parts = append(parts, sql)
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	sql := "(" + strings.Join(parts, ") UNION ALL (") + ")"
	if len(shape.plan.Order) > 0 {
		text, err := pl.Restore(shape.orderByKeys(shape.plan.Order))
		if err != nil {
			return "", err
		}
		sql += " " + text
	}
	if l := shape.sel.Limit; l != nil {
		text, err := pl.Restore(l)
		if err != nil {
			return "", err
		}
		sql += " " + text
	}
	return sql, nil
}

// slotsByShard groups slots by the shard of scheme that holds them; order lists the shards
// in the order of their first slot.
func slotsByShard(scheme *rules.Scheme, slots []int) (byShard map[*rules.Shard][]int, order []*rules.Shard) {
	byShard = map[*rules.Shard][]int{}
	for _, slot := range slots {
		sh := scheme.SlotShard(slot)
		if byShard[sh] == nil {
			order = append(order, sh)
		}
		byShard[sh] = append(byShard[sh], slot)
	}
	return byShard, order
}

// physicalNames identifies the physical tables a slot's rows are in.
func physicalNames(refs []TableRef, slot int) string {
	var b strings.Builder
	for _, r := range refs {
		b.WriteString(r.Table.PhysicalName(slot))
		b.WriteByte(0)
	}
	return b.String()
}

// restoreUnionPart restores sel as part i of a shard's UNION ALL of its slot tables.
// MariaDB takes SQL_NO_CACHE only in a union's first SELECT (1234 elsewhere), so the later
// parts go without it.
func (pl *Planner) restoreUnionPart(ed *edits, sel *ast.SelectStmt, i int) (string, error) {
	if i == 0 || sel.SelectStmtOpts == nil || sel.SelectStmtOpts.SQLCache {
		return pl.Restore(sel)
	}
	defer ed.undoTo(ed.mark())
	set(ed, &sel.SelectStmtOpts.SQLCache, true)
	return pl.Restore(sel)
}
