package router

import (
	"context"
	"strconv"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// sessionDiag is the diagnostics a session keeps of its previous statement, and how the
// statement running changes them. The zero value is a fresh session's. Owned by one
// Session; not safe for concurrent use.
type sessionDiag struct {
	last planner.Diagnostics // of the previous statement
	seq  int                 // counts the times last was set (answered: a statement that set none)
	keep bool                // the statement running asks about the previous one: keep last
}

// set makes d the diagnostics of the statement that just ran.
func (g *sessionDiag) set(d planner.Diagnostics) {
	g.seq++
	g.last = d
}

// record updates the diagnostics after a statement ran on c; warnings are fetched from c
// (one extra round trip, only when there are some) before c goes back to the pool. c may
// be nil with an error.
func (g *sessionDiag) record(ctx context.Context, c Conn, out engine.Outcome, err error) {
	if g.keep {
		if err == nil && out.Rows >= 0 {
			g.seq++
			g.last.RowCount = -1 // a result set, as MariaDB's SELECT ROW_COUNT() leaves it
		}
		return
	}
	d := planner.Diagnostics{RowCount: -1, FoundRows: g.last.FoundRows}
	switch {
	case err == nil:
		if out.Rows >= 0 {
			d.FoundRows = out.Rows
		} else {
			d.RowCount = int64(out.Affected)
		}
		if out.Warnings > 0 && !c.State().Broken() && ctx.Err() == nil {
			rows, ferr := engine.QueryRows(ctx, c, "SHOW WARNINGS")
			if ferr == nil {
				d.Warnings = rows
			}
			d.Count = int(out.Warnings)
		}
	default:
		if e, ok := sqlerr.As(err); ok {
			code := strconv.Itoa(int(e.Code))
			level := "Error"
			d.Warnings = [][]*string{{&level, &code, &e.Message}}
			d.Count, d.Errors = 1, 1
		}
	}
	g.set(d)
}

// answered updates the diagnostics after a statement that set none (seq: g.seq when it
// began) as MariaDB does: one the proxy answered itself, or whose backend answer goes
// through no record. An error replaces them, and ROW_COUNT() is -1; an OK leaves the
// warnings (a statement without tables, as those are) and ROW_COUNT() 0; rows (results)
// leave ROW_COUNT() -1.
func (g *sessionDiag) answered(ctx context.Context, results bool, seq int, err error) {
	switch {
	case g.seq != seq:
	case err != nil:
		g.record(ctx, nil, engine.Outcome{}, err)
	case results:
		g.last.RowCount = -1
	default:
		g.last.RowCount = 0
	}
}

// returnsRows reports whether st answers with rows rather than an OK.
func returnsRows(st ast.StmtNode) bool {
	switch st.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt, *ast.ShowStmt, *ast.ExplainStmt:
		return true
	}
	return false
}

// showWarnings answers SHOW WARNINGS, SHOW ERRORS and their COUNT(*) forms.
func (g *sessionDiag) showWarnings(n *ast.ShowStmt) localResult {
	if n.CountWarningsOrErrors {
		name, v := "@@session.warning_count", g.last.Count
		if n.Tp == ast.ShowErrors {
			name, v = "@@session.error_count", g.last.Errors
		}
		val := strconv.Itoa(v)
		return localResult{
			cols: []wire.Column{{Name: name, Charset: 63, Length: 21, Type: mysql.MYSQL_TYPE_LONGLONG, Flags: mysql.NOT_NULL_FLAG}},
			rows: [][]*string{{&val}},
		}
	}
	var rows [][]*string
	for _, r := range g.last.Warnings {
		if n.Tp == ast.ShowErrors && (r[0] == nil || *r[0] != "Error") {
			continue
		}
		rows = append(rows, r)
	}
	return localResult{cols: []wire.Column{
		{Name: "Level", Charset: 45, Length: 28, Type: mysql.MYSQL_TYPE_VAR_STRING, Flags: mysql.NOT_NULL_FLAG},
		{Name: "Code", Charset: 63, Length: 4, Type: mysql.MYSQL_TYPE_LONG, Flags: mysql.NOT_NULL_FLAG | mysql.UNSIGNED_FLAG},
		{Name: "Message", Charset: 45, Length: 2048, Type: mysql.MYSQL_TYPE_VAR_STRING, Flags: mysql.NOT_NULL_FLAG},
	}, rows: rows}
}
