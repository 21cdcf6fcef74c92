package router

import (
	"context"
	"strings"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// nameInsertColumns gives an INSERT ... VALUES without a column list into a sharded table
// (what mariadb-dump writes) the table's column list, read from the first physical copy, so
// that its rows can be placed by their shard key (which INSERT is one is router/planner's:
// Planner.UnnamedInsertTable). Invisible columns are left out, as MariaDB leaves them out of
// an INSERT without a column list.
func (s *Session) nameInsertColumns(ctx context.Context, snap *rules.Snapshot, ins *ast.InsertStmt) error {
	db, t := s.planner(snap).UnnamedInsertTable(snap, ins)
	if t == nil {
		return nil
	}
	cols, err := s.tableColumns(ctx, snap, db, t)
	for _, c := range cols {
		ins.Columns = append(ins.Columns, &ast.ColumnName{Name: ast.NewCIStr(c)})
	}
	return err
}

// tableColumns returns the columns of t (of database db) in order, read from its first
// physical copy: those a statement without a column list names (invisible ones left out).
func (s *Session) tableColumns(ctx context.Context, snap *rules.Snapshot, db *rules.Database, t *rules.Table) ([]string, error) {
	pl := planner.FirstCopy(t)
	c, err := s.acquire(ctx, snap, pl.Shard)
	if err != nil {
		return nil, err
	}
	rows, err := engine.QueryRows(ctx, c, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '"+
		escapeString(pl.Shard.Database)+"' AND TABLE_NAME = '"+escapeString(pl.Table)+"' AND EXTRA NOT LIKE '%INVISIBLE%' ORDER BY ORDINAL_POSITION")
	if err = s.finish(pl.Shard, c, engine.Outcome{Status: s.status}, err); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, &sqlerr.Error{Code: 1146, State: "42S02", Message: "Table '" + db.Name + "." + t.Name + "' doesn't exist"}
	}
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		if len(r) != 1 || r[0] == nil {
			return nil, sqlerr.New(sqlerr.ErUnknownError, "reading the columns of %s: an unexpected row", t.Name)
		}
		out = append(out, *r[0])
	}
	return out, nil
}

// escapeString escapes s for a single-quoted SQL string literal.
func escapeString(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`).Replace(s)
}
