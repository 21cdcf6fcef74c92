package integration

import (
	"context"
	"database/sql"
	"sync"
)

// preparedOnce is a querier that prepares each text with ? parameters once and executes
// that statement for every later query of the same text (as an application holding its
// *sql.Stmt does), so one prepared statement runs with many sets of values: the proxy plans
// it once and fills in each execution's values (router/scatter_prepared.go). Texts without
// arguments run as plain queries.
type preparedOnce struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func newPreparedOnce(db *sql.DB) *preparedOnce {
	return &preparedOnce{db: db, stmts: map[string]*sql.Stmt{}}
}

func (p *preparedOnce) stmt(ctx context.Context, text string) (*sql.Stmt, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.stmts[text]; ok {
		return st, nil
	}
	st, err := p.db.PrepareContext(ctx, text)
	if err != nil {
		return nil, err
	}
	p.stmts[text] = st
	return st, nil
}

func (p *preparedOnce) QueryContext(ctx context.Context, text string, args ...any) (*sql.Rows, error) {
	if len(args) == 0 {
		return p.db.QueryContext(ctx, text)
	}
	st, err := p.stmt(ctx, text)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (p *preparedOnce) ExecContext(ctx context.Context, text string, args ...any) (sql.Result, error) {
	if len(args) == 0 {
		return p.db.ExecContext(ctx, text)
	}
	st, err := p.stmt(ctx, text)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// Close closes every statement it prepared.
func (p *preparedOnce) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, st := range p.stmts {
		_ = st.Close()
	}
}
