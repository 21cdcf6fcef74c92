package router

import (
	"context"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/rules"
)

// resolveCharsetVars replaces a user variable assigned to the client character set (`SET
// character_set_client = @saved_cs_client`, which every mariadb-dump output holds) by its
// value, read from the backend session that holds the session's user variables (that of
// the database's default shard, where SETs run): the barrier then judges the character set
// itself (checkSetVars). It reports whether it changed st.
func (s *Session) resolveCharsetVars(ctx context.Context, snap *rules.Snapshot, st *ast.SetStmt) (bool, error) {
	changed := false
	for _, v := range st.Variables {
		ue, ok := v.Value.(*ast.VariableExpr)
		if _, cs := clientCharset(v); !cs || !ok || ue.IsSystem || ue.Value != nil {
			continue
		}
		db := s.anyDatabase(snap)
		if s.db != "" {
			db, _ = snap.Database(s.db)
		}
		if db == nil {
			return false, nil // the planner refuses the statement with the right error
		}
		c, err := s.acquire(ctx, snap, db.DefaultShard)
		if err != nil {
			return false, err
		}
		row, err := queryRow(ctx, c, "SELECT @"+quoteIdent(ue.Name))
		if err = s.finish(db.DefaultShard, c, outcome{status: s.status}, err); err != nil {
			return false, err
		}
		var val any
		if len(row) == 1 && row[0] != nil {
			val = *row[0]
		}
		v.Value, changed = ast.NewValueExpr(val, "", ""), true
	}
	return changed, nil
}
