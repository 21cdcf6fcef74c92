package router

import (
	"context"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
)

// INSERT ... SELECT reading sharded or broadcast tables (or writing them): the SELECT runs
// first through the proxy (a scatter query like any other, at most
// server.max_subquery_values rows), its rows become the statement's VALUES (plain literals,
// which the insert converts to its columns' types; byte strings as their bytes), and the INSERT is planned as one with
// literal rows: split by slot, atomic across shards (split.go, xa.go). MariaDB also reads
// all of the SELECT before inserting when it reads the table it writes, so the rows are the
// same. A SELECT answering no row leaves the statement reading a table-less SELECT of no
// row, so that the target is still checked and nothing is inserted.

// planInsertSelect plans an INSERT ... SELECT refused for the tables it reads or writes
// (refusal) as an INSERT of the SELECT's rows.
func (s *Session) planInsertSelect(ctx context.Context, snap *rules.Snapshot, ins *ast.InsertStmt, refusal error) (plan.Primitive, error) {
	bound, err := s.bindInsertSelect(ctx, snap, ins)
	if err != nil {
		return nil, err
	}
	if !bound {
		return nil, refusal
	}
	if ins.Select != nil { // no row: the target's first slot checks the statement, inserts nothing
		r, err := s.planner(snap).DescribeNested(snap, ins)
		if err != nil {
			return nil, err
		}
		r.Dynamic = false
		return r, nil
	}
	if err := s.nameInsertColumns(ctx, snap, ins); err != nil {
		return nil, err
	}
	sql, err := planner.RestoreSQL(s.vars.restoreFlags, s.lists, ins)
	if err != nil {
		return nil, err
	}
	return s.plan(snap, ins, sql, nil)
}

// bindInsertSelect replaces the SELECT of ins by its rows. It reports whether ins was an
// INSERT ... SELECT.
func (s *Session) bindInsertSelect(ctx context.Context, snap *rules.Snapshot, ins *ast.InsertStmt) (bool, error) {
	if ins.Select == nil {
		return false, nil
	}
	b := &subqueryBinder{s: s, ctx: ctx, snap: snap, max: snap.Server().MaxSubqueryValues, mode: bindRow, primary: true}
	limitRows(ins.Select, uint64(b.max)+1) // one more than allowed tells there are too many
	res, err := b.run(ins.Select)
	if err != nil {
		return false, err
	}
	if len(res.rows) == 0 {
		ins.Select = noRows(len(res.cols))
		return true, nil
	}
	lists := make([][]ast.ExprNode, len(res.rows))
	for i, row := range res.rows {
		vals := make([]ast.ExprNode, len(row))
		for j, v := range row {
			if vals[j], err = typedLiteral(s.vars.parser, v, res.cols[j], bindRow); err != nil {
				return false, err
			}
		}
		lists[i] = vals
	}
	ins.Select, ins.Lists = nil, lists
	return true, nil
}

// noRows is SELECT NULL, ... (n columns) with no row and no table.
func noRows(n int) *ast.SelectStmt {
	fields := make([]*ast.SelectField, n)
	for i := range fields {
		fields[i] = &ast.SelectField{Expr: ast.NewValueExpr(nil, "", "")}
	}
	return &ast.SelectStmt{SelectStmtOpts: &ast.SelectStmtOpts{SQLCache: true}, Kind: ast.SelectStmtKindSelect,
		Fields: &ast.FieldList{Fields: fields}, Where: ast.NewValueExpr(int64(0), "", "")}
}
