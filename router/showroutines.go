package router

import (
	"context"
	"errors"
	"regexp"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// SHOW PROCEDURE STATUS and SHOW FUNCTION STATUS would list the routines of every database
// on the backend. The proxy answers them from information_schema.ROUTINES instead (as
// MariaDB itself does), so the usual filter keeps only the user's own databases and their
// names come back logical (infofilter.go, infoschema.go).

// routineStatusQuery is the query on information_schema a SHOW PROCEDURE/FUNCTION STATUS
// [LIKE 'pattern' | WHERE expr] stands for: the same columns, in the same order. ok is false
// for other statements.
func routineStatusQuery(n *ast.ShowStmt) (sel *ast.SelectStmt, ok bool, err error) {
	switch n.Tp {
	case ast.ShowProcedureStatus:
		return routinesOfKind(n, "PROCEDURE")
	case ast.ShowFunctionStatus:
		return routinesOfKind(n, "FUNCTION")
	}
	return nil, false, nil
}

// routinesOfKind is routineStatusQuery for routines of kind (a ROUTINE_TYPE).
func routinesOfKind(n *ast.ShowStmt, kind string) (sel *ast.SelectStmt, ok bool, err error) {
	// A parser of its own: the session's still holds the statements of this query.
	st, err := parser.New().ParseOneStmt("SELECT * FROM (SELECT ROUTINE_SCHEMA AS `Db`, ROUTINE_NAME AS `Name`, "+
		"ROUTINE_TYPE AS `Type`, DEFINER AS `Definer`, LAST_ALTERED AS `Modified`, CREATED AS `Created`, "+
		"SECURITY_TYPE AS `Security_type`, ROUTINE_COMMENT AS `Comment`, CHARACTER_SET_CLIENT AS `character_set_client`, "+
		"COLLATION_CONNECTION AS `collation_connection`, DATABASE_COLLATION AS `Database Collation` "+
		"FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = '"+kind+"') AS `routines` ORDER BY `Db`, `Name`", "", "")
	if err != nil {
		return nil, true, sqlerr.New(sqlerr.ErUnknownError, "router: SHOW %s STATUS: %v", kind, err)
	}
	sel = st.(*ast.SelectStmt)
	switch {
	case n.Pattern != nil:
		like := *n.Pattern
		like.Expr = &ast.ColumnNameExpr{Name: &ast.ColumnName{Name: ast.NewCIStr("Name")}}
		sel.Where = &like
	case n.Where != nil:
		sel.Where = n.Where
	}
	return sel, true, nil
}

// execRewritten runs sel, which the proxy wrote for the client's statement, as if the client
// had sent it (err is the error of writing it).
func (s *Session) execRewritten(ctx context.Context, snap *rules.Snapshot, sel *ast.SelectStmt, err error, more bool, w wire.PacketWriter) error {
	if err != nil {
		return err
	}
	text, err := restoreSQL(s.vars.restoreFlags, s.lists, sel)
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
	sel, _, err := routinesOfKind(show, kind)
	s.publish(sql)
	defer s.publish("")
	return true, s.withDeadline(ctx, snap, statementHint(st), func(ctx context.Context) error {
		return s.execRewritten(ctx, snap, sel, err, false, w)
	})
}
