package planner

import (
	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/wire"
)

// rowProgram is a merge's plan.RowProgram: the columns computed over each merged row
// (expressions over aggregates, aggexpr.go) and the HAVING condition (having.go), compiled
// at planning and run by the executor's merge.
type rowProgram struct {
	computed []computedCol
	having   *havingExpr
}

// rowsOf is m's row program, which it gets when it has none.
func rowsOf(m *plan.Merge) *rowProgram {
	if m.Rows == nil {
		m.Rows = &rowProgram{}
	}
	return m.Rows.(*rowProgram)
}

// computedOf is the computed columns of m's row program (none without one).
func computedOf(m *plan.Merge) []computedCol {
	if p, ok := m.Rows.(*rowProgram); ok {
		return p.computed
	}
	return nil
}

// Steps describes the computed columns, then the HAVING filter (plan.RowProgram).
func (p *rowProgram) Steps() []string {
	var out []string
	for _, c := range p.computed {
		out = append(out, "compute "+c.text)
	}
	if p.having != nil {
		out = append(out, "filter HAVING "+p.having.text)
	}
	return out
}

// Columns are the computed columns and their sort keys' columns (plan.RowProgram).
func (p *rowProgram) Columns() []plan.ColRef {
	var out []plan.ColRef
	for _, c := range p.computed {
		out = append(out, c.Col)
		if c.Weight != plan.NoCol {
			out = append(out, c.Weight)
		}
	}
	return out
}

// Bind prepares the program's evaluation over rows of these kinds and definitions
// (plan.RowProgram).
func (p *rowProgram) Bind(kinds []merge.Kind, defs []wire.ColDef, col func(plan.ColRef) int) plan.RowEval {
	return &rowEval{p: p, ev: evalRow{Kinds: kinds, Defs: defs, Col: col}}
}

// rowEval runs a rowProgram over merged rows (plan.RowEval).
type rowEval struct {
	p  *rowProgram
	ev evalRow
}

// Eval writes each computed column's value, formatted for its column's type and decimals,
// and the collation key of a string that is a sort key, over the shards' value; then it
// reports whether the row passes HAVING.
func (e *rowEval) Eval(row [][]byte) bool {
	e.ev.Row = row
	if len(e.p.computed) > 0 {
		// Evaluate every column first: one computed column never reads another.
		vals := make([][]byte, len(e.p.computed))
		for i, cc := range e.p.computed {
			j := e.ev.Col(cc.Col)
			vals[i] = formatValue(cc.Eval(&e.ev), e.ev.Kinds[j], e.ev.Defs[j])
		}
		for i, cc := range e.p.computed {
			j := e.ev.Col(cc.Col)
			row[j] = vals[i]
			if cc.Weight != plan.NoCol && vals[i] != nil && e.ev.Kinds[j] == merge.KindString {
				w := vals[i]
				if coll := e.ev.Collation(e.ev.Defs[j].Collation); coll != nil {
					w = coll.AppendKey(nil, string(w))
				}
				row[e.ev.Col(cc.Weight)] = w
			}
		}
	}
	if e.p.having == nil {
		return true
	}
	t, ok := e.p.having.Eval(&e.ev).Truth()
	return ok && t
}

// formatValue writes v as MySQL's text protocol writes a value of the column's kind.
func formatValue(v sqlValue, k merge.Kind, def wire.ColDef) []byte {
	if v.Null {
		return nil
	}
	return append([]byte{}, valueText(coerce(v, k, def))...)
}
