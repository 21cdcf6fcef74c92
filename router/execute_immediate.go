package router

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/router/sqlscan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// MariaDB's EXECUTE IMMEDIATE 'text' [USING value, ...] (or EXECUTE IMMEDIATE @variable) is
// emulated by the proxy: the text (a user variable's value read as PREPARE ... FROM @v
// reads it) has each ? replaced by the matching USING value, a literal or a user
// variable, and the result is parsed, checked and planned exactly like a statement the
// client sent directly. Nothing of the EXECUTE IMMEDIATE itself reaches a backend.

var executeImmediatePrefix = regexp.MustCompile(`(?is)^\s*EXECUTE\s+IMMEDIATE\s`)

var errImmediateShape = errors.New("EXECUTE IMMEDIATE takes a string literal or a user variable, and USING values")

// executeImmediate runs EXECUTE IMMEDIATE; ok is false when sql does not have that shape.
func (s *Session) executeImmediate(ctx context.Context, snap *rules.Snapshot, sql string, w wire.PacketWriter) (ok bool, err error) {
	loc := executeImmediatePrefix.FindStringIndex(sql)
	if loc == nil {
		return false, nil
	}
	body := strings.TrimRight(strings.TrimSpace(sql[loc[1]:]), "; \t\r\n")
	operand, using := body, ""
	if at := sqlscan.Keyword(body, 0, "using"); at >= 0 {
		operand, using = body[:at], body[at+len("using"):]
	}
	exprs, err := exprList(s.parseOne, operand)
	if err != nil {
		return true, err
	}
	if len(exprs) != 1 {
		return true, syntaxError(errImmediateShape)
	}
	text, err := s.immediateText(ctx, snap, exprs[0])
	if err != nil {
		return true, err
	}
	var args []ast.ExprNode
	if using != "" {
		if args, err = exprList(s.parseOne, using); err != nil {
			return true, err
		}
		for _, a := range args {
			if !literalOrUserVar(a) {
				return true, sqlerr.NotSupported("EXECUTE IMMEDIATE ... USING anything but literals and user variables")
			}
		}
	}
	return true, s.runImmediate(ctx, snap, text, args, w)
}

// exprList parses a comma-separated list of plain expressions with parse (the session's).
func exprList(parse func(string) (ast.StmtNode, error), list string) ([]ast.ExprNode, error) {
	st, err := parse("SELECT " + list)
	if err != nil {
		return nil, err
	}
	sel, ok := st.(*ast.SelectStmt)
	if !ok || sel.From != nil || sel.Where != nil || sel.GroupBy != nil || sel.Having != nil || sel.OrderBy != nil ||
		sel.Limit != nil || sel.LockInfo != nil || sel.SelectIntoOpt != nil || sel.Fields == nil {
		return nil, syntaxError(errImmediateShape)
	}
	out := make([]ast.ExprNode, 0, len(sel.Fields.Fields))
	for _, f := range sel.Fields.Fields {
		if f.WildCard != nil || f.AsName.O != "" || f.Expr == nil {
			return nil, syntaxError(errImmediateShape)
		}
		out = append(out, f.Expr)
	}
	return out, nil
}

func literalOrUserVar(e ast.ExprNode) bool {
	switch v := e.(type) {
	case *test_driver.ValueExpr:
		return true
	case *ast.VariableExpr:
		return !v.IsSystem && v.Value == nil
	case *ast.UnaryOperationExpr: // -1
		_, lit := v.V.(*test_driver.ValueExpr)
		return lit
	}
	return false
}

// immediateText is the statement text an EXECUTE IMMEDIATE operand stands for.
func (s *Session) immediateText(ctx context.Context, snap *rules.Snapshot, e ast.ExprNode) (string, error) {
	switch v := e.(type) {
	case *test_driver.ValueExpr:
		if k := v.Kind(); k == test_driver.KindString || k == test_driver.KindBytes {
			return v.GetString(), nil
		}
		if v.Kind() == test_driver.KindNull {
			return "NULL", nil // MariaDB runs NULL as the text "NULL": a syntax error
		}
	case *ast.VariableExpr:
		if !v.IsSystem && v.Value == nil {
			return s.userVariable(ctx, snap, v.Name)
		}
	}
	return "", sqlerr.NotSupported("EXECUTE IMMEDIATE of an expression: the proxy must read the statement before it runs (use a string literal or a user variable)")
}

// runImmediate runs text with its ? markers bound to args, as if the client had sent it.
func (s *Session) runImmediate(ctx context.Context, snap *rules.Snapshot, text string, args []ast.ExprNode, w wire.PacketWriter) error {
	facts := s.vars.facts()
	text, err := facts.Text(text)
	if err != nil {
		return err
	}
	stmts, err := s.parse(text)
	if gerr := facts.Grammar(stmts, err); gerr != nil {
		return gerr
	}
	if err != nil {
		if len(args) == 0 && !executeImmediatePrefix.MatchString(text) {
			return s.runUnparsed(ctx, snap, text, err, w) // the MariaDB-only shapes, checked the same way
		}
		return refuseUnparsed(text, err)
	}
	st, err := oneStmt(stmts)
	if err != nil {
		return err
	}
	if text, err = bindImmediate(s.vars.restoreFlags, s.lists, st, text, args); err != nil {
		return err
	}
	if len(args) > 0 {
		if st, err = s.parseOne(text); err != nil {
			return err
		}
	}
	switch st.(type) {
	case *ast.PrepareStmt, *ast.ExecuteStmt, *ast.DeallocateStmt, *ast.UseStmt:
		return sqlerr.New(sqlerr.ErUnsupportedPS, "This command is not supported in the prepared statement protocol yet")
	}
	return s.execWithDeadline(ctx, snap, st, text, false, w)
}

// bindImmediate returns text, read as st, with its ? markers replaced by args (in text
// order), written as SQL under flags with the long literal lists of lists.
func bindImmediate(flags format.RestoreFlags, lists planner.BigLists, st ast.StmtNode, text string, args []ast.ExprNode) (string, error) {
	var markers planner.MarkerCollector
	st.Accept(&markers)
	if len(markers) != len(args) {
		return "", sqlerr.New(sqlerr.ErWrongArguments, "Incorrect arguments to EXECUTE")
	}
	if len(args) == 0 {
		return text, nil
	}
	slices.SortFunc(markers, func(x, y *test_driver.ParamMarkerExpr) int { return x.Offset - y.Offset })
	var b strings.Builder
	prev := 0
	for i, m := range markers {
		if m.Offset < prev || m.Offset >= len(text) || text[m.Offset] != '?' {
			return "", sqlerr.New(sqlerr.ErUnknownError, "router: EXECUTE IMMEDIATE: no ? at offset %d", m.Offset)
		}
		v, err := planner.RestoreSQL(flags, lists, args[i])
		if err != nil {
			return "", err
		}
		b.WriteString(text[prev:m.Offset])
		b.WriteString(v)
		prev = m.Offset + 1
	}
	b.WriteString(text[prev:])
	return b.String(), nil
}
