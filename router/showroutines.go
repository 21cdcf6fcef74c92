package router

import (
	"context"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// SHOW PROCEDURE STATUS and SHOW FUNCTION STATUS would list the routines of every database
// on the backend. The proxy answers them from information_schema.ROUTINES instead (as
// MariaDB itself does), so the usual filter keeps only the user's own databases and their
// names come back logical (infofilter.go, infoschema.go).

// execRewritten runs sel, which the proxy wrote for the client's statement, as if the client
// had sent it (err is the error of writing it).
func (s *Session) execRewritten(ctx context.Context, snap *rules.Snapshot, sel *ast.SelectStmt, err error, more bool, w wire.PacketWriter) error {
	if err != nil {
		return err
	}
	text, err := planner.RestoreSQL(s.vars.restoreFlags, s.lists, sel)
	if err != nil {
		return err
	}
	return s.execStmt(ctx, snap, sel, text, more, w)
}

// packageStatus runs SHOW PACKAGE [BODY] STATUS [LIKE ... | WHERE ...] (mariadb-dump
// --routines sends it; the parser does not know it) as the query on information_schema
// planner.PackageStatus writes for it. ok is false when sql does not have that shape.
func (s *Session) packageStatus(ctx context.Context, snap *rules.Snapshot, sql string, w wire.PacketWriter) (ok bool, err error) {
	st, sel, ok, err := planner.PackageStatus(sql, s.parseOne)
	if !ok || st == nil {
		return ok, err
	}
	s.publish(sql)
	defer s.publish("")
	return true, s.withDeadline(ctx, snap, statementHint(st), func(ctx context.Context) error {
		return s.execRewritten(ctx, snap, sel, err, false, w)
	})
}
