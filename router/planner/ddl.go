package planner

import (
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// DDLTargets returns the configured (sharded or broadcast) tables a DDL statement names, or
// nil when it only touches single tables. Like Analyze it binds st (the session values its
// analysis reads stay written into the tree): the caller writes each copy from st with
// PlanDDL (mariadb_ddl.go).
func (pl *Planner) DDLTargets(snap *rules.Snapshot, st ast.StmtNode) ([]TableRef, error) {
	_, refs, err := pl.ddlTargets(snap, st)
	return refs, err
}

// ddlTargets is DDLTargets with the analysis, whose edits of st the caller undoes or keeps.
func (pl *Planner) ddlTargets(snap *rules.Snapshot, st ast.StmtNode) (*Analyzer, []TableRef, error) {
	a, err := pl.analyze(snap, st) // the barrier, as in plan: fanned-out DDL never reaches plan
	if err != nil || !a.routed() {
		return a, nil, err
	}
	return a, a.Refs, nil
}

// PlanTableDDL plans st, DDL on tables, as a fan-out when it names sharded or broadcast
// tables (planDDL); nil when it names single tables only (planned as any statement). st is
// left as it was.
func (pl *Planner) PlanTableDDL(snap *rules.Snapshot, st ast.StmtNode) (*plan.DDL, error) {
	a, refs, err := pl.ddlTargets(snap, st)
	defer a.ed.undo(st) // after PlanDDL: each copy is written with the analysis' edits
	if err != nil || refs == nil {
		return nil, err
	}
	return pl.PlanDDL(st, refs)
}

// PlanDDL plans DDL naming the configured tables refs as a statement per physical copy of
// them: each slot's table of a sharded table, each shard's copy of a broadcast table. n is
// what is written back as SQL for each copy once refs name it: the statement itself, or its
// MariaDB form (mariadb_ddl.go).
func (pl *Planner) PlanDDL(n ast.Node, refs []TableRef) (*plan.DDL, error) {
	main := refs[0].Table
	for _, r := range refs[1:] {
		if r.Table.Kind != main.Kind || r.Table.Scheme != main.Scheme || r.Table.TablePerSlot != main.TablePerSlot {
			return nil, sqlerr.NotSupported("DDL naming tables placed differently (%s, %s)", main.Name, r.Table.Name)
		}
	}
	d := &plan.DDL{}
	var ed edits
	defer ed.undo(n)
	for _, p := range main.Placements() {
		for _, r := range refs {
			ed.name(&r.Node.Name, ast.NewCIStr(physicalFor(r.Table, p)))
			if r.Node.Schema.O != "" {
				ed.name(&r.Node.Schema, ast.NewCIStr(p.Shard.Database))
			}
		}
		sql, err := pl.Restore(n)
		if err != nil {
			return nil, err
		}
		d.Copies = append(d.Copies, plan.DDLCopy{Shard: p.Shard, Table: p.Table, SQL: sql})
	}
	return d, nil
}

func physicalFor(t *rules.Table, p rules.Placement) string {
	if p.Slot >= 0 {
		return t.PhysicalName(p.Slot)
	}
	return t.Name
}

// PlanStatement plans a client's statement as a query runs it: SHOW DATABASES answered by
// the proxy (ShowDatabases), DDL on sharded or broadcast tables as a fan-out
// (PlanTableDDL), anything else by Plan.
func (pl *Planner) PlanStatement(snap *rules.Snapshot, st ast.StmtNode, text string) (plan.Primitive, error) {
	if n, ok := st.(*ast.ShowStmt); ok && n.Tp == ast.ShowDatabases {
		return pl.ShowDatabases(snap, n)
	}
	if isTableDDL(st) {
		d, err := pl.PlanTableDDL(snap, st)
		if err != nil {
			return nil, err
		}
		if d != nil {
			return d, nil
		}
	}
	return pl.Plan(snap, st, text, nil)
}

// isTableDDL reports whether st is DDL on tables that the proxy fans out.
func isTableDDL(st ast.StmtNode) bool {
	switch st.(type) {
	case *ast.CreateTableStmt, *ast.AlterTableStmt, *ast.DropTableStmt, *ast.TruncateTableStmt,
		*ast.CreateIndexStmt, *ast.DropIndexStmt:
		return true
	}
	return false
}
