package planner

import (
	"errors"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/barrier"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// Statements and clauses nested in a statement the session runs: the text of PREPARE ...
// FROM and SET STATEMENT ... FOR, and a RETURNING clause, which the parser does not know.

var (
	errNotReturning    = errors.New("a RETURNING clause holds a list of expressions")
	errNotSetStatement = errors.New("SET STATEMENT takes variable assignments, FOR and a statement")
)

// Nested plans a statement nested in another one (PREPARE ... FROM 'text', SET STATEMENT
// ... FOR text): read through the barrier's facts of the session, parsed by parse and
// planned exactly as if the client had sent text alone (described, as at PREPARE). what
// names the outer statement for messages. The nested statement must be a data statement
// that runs on one shard as one statement (a Route): the outer one carries it there
// unchanged.
func (pl *Planner) Nested(snap *rules.Snapshot, facts barrier.Facts, text, what string, parse ParseFunc) (ast.StmtNode, *plan.Route, error) {
	text, err := facts.Text(text)
	if err != nil {
		return nil, nil, err
	}
	st, err := parse(text)
	if err != nil {
		return nil, nil, err
	}
	switch n := st.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt, *ast.InsertStmt, *ast.UpdateStmt, *ast.DeleteStmt, *ast.DoStmt, *ast.CallStmt:
	case *ast.ShowStmt:
		switch n.Tp {
		case ast.ShowDatabases, ast.ShowProcessList, ast.ShowWarnings, ast.ShowErrors, ast.ShowTables:
			// answered by the proxy, which a backend-side statement would bypass
			return nil, nil, sqlerr.NotSupported("%s of a SHOW statement the proxy answers itself", what)
		}
	default:
		if err := barrier.Statement(st); err != nil {
			return nil, nil, err
		}
		return nil, nil, sqlerr.New(sqlerr.ErUnsupportedPS, "This command is not supported in the prepared statement protocol yet (%s of this statement through shardproxy)", what)
	}
	d := *pl
	d.Describing = true
	p, err := d.Plan(snap, st, text, nil)
	if err != nil {
		return nil, nil, err
	}
	r, ok := plan.RouteOf(p)
	if !ok || r.Dynamic || !r.Names.Empty() {
		return nil, nil, sqlerr.NotSupported("%s of a statement the proxy must route or rewrite at each execution (sharded or broadcast tables, session functions, information_schema); use the binary protocol's prepared statements", what)
	}
	return st, r, nil
}

// CheckReturning plans the expressions of a RETURNING clause (the clause's text, RETURNING
// first), parsed by parse, as a SELECT list: what they read passes the barrier like any
// query (a subquery on mysql.user is refused).
func (pl *Planner) CheckReturning(snap *rules.Snapshot, clause string, parse ParseFunc) error {
	exprs := strings.TrimSpace(clause[len("returning"):])
	st, err := parse("SELECT " + exprs + " FROM DUAL")
	if err != nil {
		return err
	}
	if _, ok := st.(*ast.SelectStmt); !ok {
		return SyntaxError(errNotReturning)
	}
	_, err = pl.Plan(snap, st, "", nil)
	return err
}

// SetStatement plans MariaDB's SET STATEMENT assign FOR text: the assignments must set
// session system variables to constants the barrier allows, none that changes how the
// backend reads the statement (the character set, sql_mode); the statement must route to
// one shard as written (Nested). It goes there as SET STATEMENT assign FOR its planned text
// (SQL). facts and parse read the text as the session does.
func (pl *Planner) SetStatement(snap *rules.Snapshot, facts barrier.Facts, assign, text string, parse ParseFunc) (ShapePlan, error) {
	set, err := parse("SET " + assign)
	if err != nil {
		return ShapePlan{}, err
	}
	vars, ok := set.(*ast.SetStmt)
	if !ok {
		return ShapePlan{}, SyntaxError(errNotSetStatement)
	}
	if err := barrier.SetVars(vars); err != nil {
		return ShapePlan{}, err
	}
	for _, v := range vars.Variables {
		if _, constant := v.Value.(ast.ValueExpr); !v.IsSystem || !constant {
			return ShapePlan{}, sqlerr.New(sqlerr.ErParse, "You have an error in your SQL syntax: SET STATEMENT sets system variables to constants")
		}
		if _, cs := barrier.ClientCharset(v); cs || strings.EqualFold(v.Name, "sql_mode") {
			// They change how the backend reads the statement, which the proxy parses
			// under the session's own.
			return ShapePlan{}, sqlerr.NotSupported("SET STATEMENT %s ... FOR through the proxy (set it for the session)", strings.ToLower(v.Name))
		}
	}
	st, r, err := pl.Nested(snap, facts, text, "SET STATEMENT ... FOR", parse)
	if err != nil {
		return ShapePlan{}, err
	}
	return ShapePlan{Stmt: st, Route: r, SQL: "SET STATEMENT " + assign + " FOR " + r.SQL}, nil
}
