package router

import (
	"context"
	"fmt"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/barrier"
	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// isTableDDL reports whether st is DDL on tables that the proxy fans out.
func isTableDDL(st ast.StmtNode) bool {
	switch st.(type) {
	case *ast.CreateTableStmt, *ast.AlterTableStmt, *ast.DropTableStmt, *ast.TruncateTableStmt,
		*ast.CreateIndexStmt, *ast.DropIndexStmt:
		return true
	}
	return false
}

// ddlTargets returns the configured (sharded or broadcast) tables a DDL statement names, or
// nil when it only touches single tables.
func (pl *planner) ddlTargets(snap *rules.Snapshot, st ast.StmtNode) ([]tableRef, error) {
	if err := barrier.Statement(st); err != nil { // the barrier, as in plan: fanned-out DDL never reaches plan
		return nil, err
	}
	a := &analyzer{pl: pl, snap: snap, ctes: map[string]bool{}, sources: map[*ast.TableName]*ast.TableSource{}}
	st.Accept(a)
	if a.err != nil {
		return nil, a.err
	}
	if !a.routed() {
		return nil, nil
	}
	return a.refs, nil
}

// planTableDDL plans st, DDL on tables, as a fan-out when it names sharded or broadcast
// tables (planDDL); nil when it names single tables only (planned as any statement).
func (pl *planner) planTableDDL(snap *rules.Snapshot, st ast.StmtNode) (*plan.DDL, error) {
	refs, err := pl.ddlTargets(snap, st)
	if err != nil || refs == nil {
		return nil, err
	}
	return pl.planDDL(st, refs)
}

// planDDL plans DDL naming the configured tables refs as a statement per physical copy of
// them: each slot's table of a sharded table, each shard's copy of a broadcast table. n is
// what is written back as SQL for each copy once refs name it: the statement itself, or its
// MariaDB form (mariadb_ddl.go).
func (pl *planner) planDDL(n ast.Node, refs []tableRef) (*plan.DDL, error) {
	main := refs[0].table
	for _, r := range refs[1:] {
		if r.table.Kind != main.Kind || r.table.Scheme != main.Scheme || r.table.TablePerSlot != main.TablePerSlot {
			return nil, sqlerr.NotSupported("DDL naming tables placed differently (%s, %s)", main.Name, r.table.Name)
		}
	}
	d := &plan.DDL{}
	for _, p := range main.Placements() {
		for _, r := range refs {
			r.node.Name = ast.NewCIStr(physicalFor(r.table, p))
			if r.node.Schema.O != "" {
				r.node.Schema = ast.NewCIStr(p.Shard.Database)
			}
		}
		sql, err := pl.restore(n)
		if err != nil {
			return nil, err
		}
		d.Copies = append(d.Copies, plan.DDLCopy{Shard: p.Shard, Table: p.Table, SQL: sql})
	}
	return d, nil
}

// fanOutDDL runs a DDL fan-out: its statements one copy at a time; a partial failure names
// the copies that changed and those that did not, so an operator can finish or undo it.
func (s *Session) fanOutDDL(ctx context.Context, snap *rules.Snapshot, d *plan.DDL, more bool, w wire.PacketWriter) error {
	if err := s.ddlInTxn(); err != nil {
		return err
	}
	var progress ddlProgress
	for _, c := range d.Copies {
		err := s.run(ctx, snap, c.Shard, c.SQL, false, engine.Discard{})
		if progress.add(c.Shard.Name+":"+c.Table, err) && ctx.Err() != nil {
			break
		}
	}
	if err := progress.err(); err != nil {
		return err
	}
	return s.writeOK(w, more)
}

// ddlInTxn refuses DDL on several shards inside a transaction.
func (s *Session) ddlInTxn() error {
	if s.txnOpen() || s.status&wire.StatusInTrans != 0 {
		// A session that only keeps its connections (user variables, LOCK TABLES) runs the
		// DDL on them, as one server would.
		return sqlerr.NotSupported("DDL on sharded or broadcast tables inside a transaction (it would commit the transaction on some shards only)")
	}
	return nil
}

// ddlProgress collects the outcome of one DDL statement run on several physical copies, one
// at a time, so that a partial failure names the copies that changed and those that did not.
type ddlProgress struct {
	done, failed []string
	firstErr     *sqlerr.Error
	differ       bool // the failures have different codes
}

// add records the outcome err of the statement on the copy where; it reports whether it
// failed.
func (d *ddlProgress) add(where string, err error) bool {
	if err == nil {
		d.done = append(d.done, where)
		return false
	}
	e, ok := sqlerr.As(err)
	if !ok {
		e = sqlerr.New(sqlerr.ErUnknownError, "%v", err)
	}
	if d.firstErr == nil {
		d.firstErr = e
	}
	d.differ = d.differ || e.Code != d.firstErr.Code
	d.failed = append(d.failed, fmt.Sprintf("%s (%d: %s)", where, e.Code, e.Message))
	return true
}

// err is nil when every copy succeeded, the copies' error when all failed alike (the table
// already exists, say), else an error naming where it succeeded and where it failed.
func (d *ddlProgress) err() error {
	switch {
	case d.firstErr == nil:
		return nil
	case len(d.done) == 0 && !d.differ:
		return d.firstErr
	}
	return &sqlerr.Error{Code: d.firstErr.Code, State: d.firstErr.State, Message: fmt.Sprintf(
		"DDL partially applied: succeeded on [%s]; failed on [%s]", strings.Join(d.done, ", "), strings.Join(d.failed, ", "))}
}

func physicalFor(t *rules.Table, p rules.Placement) string {
	if p.Slot >= 0 {
		return t.PhysicalName(p.Slot)
	}
	return t.Name
}
