package router

import (
	"context"
	"testing"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// TestSessionDiagRecord: an OK sets ROW_COUNT() and keeps FOUND_ROWS(); a result set sets
// FOUND_ROWS() and ROW_COUNT() -1; an error is the one warning and error; each counts.
func TestSessionDiagRecord(t *testing.T) {
	ctx := context.Background()
	var g sessionDiag
	g.record(ctx, nil, engine.Outcome{Rows: 4}, nil)
	g.record(ctx, nil, engine.Outcome{Rows: -1, Affected: 2}, nil)
	if g.last.RowCount != 2 || g.last.FoundRows != 4 || g.seq != 2 {
		t.Errorf("after rows and an OK: %+v, seq %d", g.last, g.seq)
	}
	g.record(ctx, nil, engine.Outcome{}, sqlerr.New(sqlerr.ErBadDB, "Unknown database 'x'"))
	if g.last.RowCount != -1 || g.last.FoundRows != 4 || g.last.Count != 1 || g.last.Errors != 1 || len(g.last.Warnings) != 1 {
		t.Errorf("after an error: %+v", g.last)
	}
	if res := g.showWarnings(&ast.ShowStmt{Tp: ast.ShowErrors}); len(res.rows) != 1 || *res.rows[0][1] != "1049" {
		t.Errorf("SHOW ERRORS: %d rows", len(res.rows))
	}
	if res := g.showWarnings(&ast.ShowStmt{Tp: ast.ShowWarnings, CountWarningsOrErrors: true}); *res.rows[0][0] != "1" {
		t.Errorf("SHOW COUNT(*) WARNINGS: %s", *res.rows[0][0])
	}
}

// TestSessionDiagKeep: a statement asking about the previous one (SELECT ROW_COUNT(), SHOW
// WARNINGS) leaves its warnings; only its own result set marks ROW_COUNT() -1.
func TestSessionDiagKeep(t *testing.T) {
	ctx := context.Background()
	var g sessionDiag
	g.set(planner.Diagnostics{RowCount: 3, Count: 1, Warnings: [][]*string{{ptr("Note"), ptr("1"), ptr("x")}}})
	g.keep = true
	g.record(ctx, nil, engine.Outcome{}, sqlerr.New(sqlerr.ErBadDB, "x"))
	if g.last.RowCount != 3 || g.last.Count != 1 || g.seq != 1 {
		t.Errorf("kept through an error: %+v, seq %d", g.last, g.seq)
	}
	g.record(ctx, nil, engine.Outcome{Rows: 1}, nil)
	if g.last.RowCount != -1 || g.last.Count != 1 || g.seq != 2 {
		t.Errorf("kept through a result set: %+v, seq %d", g.last, g.seq)
	}
}

// TestSessionDiagAnswered: a statement that recorded nothing leaves ROW_COUNT() 0 (OK) or
// -1 (rows), an error replaces the diagnostics, and one that recorded is left alone.
func TestSessionDiagAnswered(t *testing.T) {
	ctx := context.Background()
	var g sessionDiag
	g.set(planner.Diagnostics{RowCount: 5, Count: 2})
	g.answered(ctx, false, g.seq, nil)
	if g.last.RowCount != 0 || g.last.Count != 2 {
		t.Errorf("an OK the proxy answered: %+v", g.last)
	}
	g.answered(ctx, true, g.seq, nil)
	if g.last.RowCount != -1 {
		t.Errorf("rows the proxy answered: %+v", g.last)
	}
	seq := g.seq
	g.set(planner.Diagnostics{RowCount: 9})
	g.answered(ctx, false, seq, sqlerr.New(sqlerr.ErBadDB, "x"))
	if g.last.RowCount != 9 {
		t.Errorf("a statement that recorded its own: %+v", g.last)
	}
	g.answered(ctx, false, g.seq, sqlerr.New(sqlerr.ErBadDB, "x"))
	if g.last.Errors != 1 || g.last.RowCount != -1 {
		t.Errorf("an error: %+v", g.last)
	}
}

// TestInsertIDsGenerated: an id the statement's text proves generated is taken without a
// question; one it cannot tell is asked of the connection, and kept only when the
// connection's LAST_INSERT_ID() is that id.
func TestInsertIDsGenerated(t *testing.T) {
	ctx := context.Background()
	be := newFakeBackend()
	r := fakeRouter(t, be)
	s := fakeSession(t, r, "app", 1)
	s.db = "blog"
	snap := r.rules.Load()
	c, err := s.acquire(ctx, snap, snap.Shards()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer s.held.release(c)
	be.takeLog()
	ids := insertIDs{rule: insertIDRuleOf(parseOneForTest(t, "INSERT INTO n (v) VALUES (1)"))}
	if got := ids.generated(ctx, c, engine.Outcome{LastInsertID: 8}, nil); got != 8 || len(be.takeLog()) != 0 {
		t.Errorf("generated id: %d", got)
	}
	if got := ids.generated(ctx, c, engine.Outcome{LastInsertID: 8}, sqlerr.New(sqlerr.ErBadDB, "x")); got != 8 {
		t.Errorf("after an error: %d (the OK's id stands as it was)", got)
	}
	ids.rule = insertIDRuleOf(parseOneForTest(t, "INSERT INTO n (id, v) VALUES (8, 1)"))
	c.(*fakeConn).lastID = 3
	if got := ids.generated(ctx, c, engine.Outcome{LastInsertID: 8}, nil); got != 0 {
		t.Errorf("explicit id 8, connection's LAST_INSERT_ID() 3: %d, want 0", got)
	}
	if log := be.takeLog(); len(log) != 1 {
		t.Errorf("asked the connection %q, want one SELECT LAST_INSERT_ID()", log)
	}
}
