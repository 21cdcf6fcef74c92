package router

import (
	"context"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/router/planner"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// MariaDB (10.5 and later) takes a RETURNING clause at the end of INSERT, REPLACE and
// DELETE; GORM sends one with every INSERT to MariaDB. The TiDB parser does not know it, so
// in a sharded database the proxy cuts the clause off the text, plans the rest as usual
// (routing, physical table names) and sends the planned statement with the clause put back.
// Only a statement that goes to one shard may carry it. Cutting it off, and putting it back
// on the plan, is router/planner's (returning.go there: SplitReturning, ReturningStmt,
// WithReturning).

// execReturning runs an INSERT, REPLACE or DELETE ... RETURNING sent as a query.
func (s *Session) execReturning(ctx context.Context, snap *rules.Snapshot, st ast.StmtNode, text, clause string, w wire.PacketWriter) error {
	p, err := s.plan(snap, st, text, nil)
	if err == nil {
		p, err = planner.WithReturning(p, clause)
	}
	if err != nil {
		return err
	}
	r, ok := plan.RouteOf(p)
	if !ok {
		return sqlerr.NotSupported("RETURNING on a statement whose rows are on several shards")
	}
	if r.Sticky {
		s.sticky = true
	}
	if err := s.checkWrite(ctx, r.Shard); err != nil {
		return err
	}
	return lostWrite(s.run(ctx, snap, r.Shard, r.SQL, false, w))
}
