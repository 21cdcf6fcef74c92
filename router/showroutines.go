package router

import (
	"context"
	"errors"
	"regexp"

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

var showPackageStatus = regexp.MustCompile(`(?is)^\s*SHOW\s+PACKAGE\s+(BODY\s+)?STATUS(\s.*)?$`)

// packageStatus runs SHOW PACKAGE [BODY] STATUS [LIKE ... | WHERE ...] (mariadb-dump
// --routines sends it; the parser does not know it) as routineStatusQuery does SHOW
// PROCEDURE STATUS. ok is false when sql does not have that shape.
func (s *Session) packageStatus(ctx context.Context, snap *rules.Snapshot, sql string, w wire.PacketWriter) (ok bool, err error) {
	m := showPackageStatus.FindStringSubmatch(sql)
	if m == nil {
		return false, nil
	}
	st, err := s.parseOne("SHOW PROCEDURE STATUS" + m[2])
	if err != nil {
		return true, err
	}
	show, isShow := st.(*ast.ShowStmt)
	if !isShow || show.Tp != ast.ShowProcedureStatus {
		return true, syntaxError(errors.New("SHOW PACKAGE STATUS takes LIKE or WHERE"))
	}
	kind := "PACKAGE"
	if m[1] != "" {
		kind = "PACKAGE BODY"
	}
	sel, _, err := planner.RoutinesOfKind(show, kind)
	s.publish(sql)
	defer s.publish("")
	return true, s.withDeadline(ctx, snap, statementHint(st), func(ctx context.Context) error {
		return s.execRewritten(ctx, snap, sel, err, false, w)
	})
}
