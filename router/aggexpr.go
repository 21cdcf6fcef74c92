package router

import (
	"github.com/shardproxy/shardproxy/router/planner"
	"github.com/shardproxy/shardproxy/wire"

	"github.com/shardproxy/shardproxy/merge"
)

// Expressions over aggregates in a scatter query (SUM(a)/COUNT(*), ROUND(AVG(x), 2),
// MAX(a) - MIN(a), COUNT(DISTINCT a) + 1) in the select list, HAVING and ORDER BY. The
// shards still compute the expression, over their partial groups: its value is discarded,
// but its column definition is the one one MariaDB holding every row would send (types
// follow from the arguments' types, not their values). The aggregates it reads become
// hidden columns merged as usual; after the merge the proxy evaluates the expression with
// the HAVING evaluator (having.go) and writes the value, formatted for the column's type
// and decimals, over the shard's.

// computeStream evaluates the computed columns of each merged row.
type computeStream struct {
	in   merge.Stream
	cols []planner.ComputedCol
	ev   *planner.EvalRow
	defs []wire.ColDef
}

func (c *computeStream) Next() ([][]byte, error) {
	row, err := c.in.Next()
	if row == nil || err != nil {
		return row, err
	}
	c.ev.Row = row
	// Evaluate every column first: one computed column never reads another.
	vals := make([][]byte, len(c.cols))
	for i, cc := range c.cols {
		j := c.ev.Col(cc.Col)
		vals[i] = formatValue(cc.Eval(c.ev), c.ev.Kinds[j], c.defs[j])
	}
	for i, cc := range c.cols {
		j := c.ev.Col(cc.Col)
		row[j] = vals[i]
		if cc.Weight != planner.NoCol && vals[i] != nil && c.ev.Kinds[j] == merge.KindString {
			w := vals[i]
			if coll := c.ev.Collation(c.defs[j].Collation); coll != nil {
				w = coll.AppendKey(nil, string(w))
			}
			row[c.ev.Col(cc.Weight)] = w
		}
	}
	return row, nil
}

// formatValue writes v as MySQL's text protocol writes a value of the column's kind.
func formatValue(v planner.SQLValue, k merge.Kind, def wire.ColDef) []byte {
	if v.Null {
		return nil
	}
	return append([]byte{}, planner.ValueText(planner.Coerce(v, k, def))...)
}
