package merge

import (
	"bytes"
	"strconv"
)

// AggFunc is an aggregate whose per-shard partial results can be combined.
type AggFunc uint8

const (
	AggCount AggFunc = iota // COUNT(...): partial counts add up
	AggSum                  // SUM: partial sums add up; NULL when every partial is NULL
	AggMin
	AggMax
	AggAvg // from hidden partial SUM and COUNT columns
)

// Agg says how one column of a group's rows is combined.
type Agg struct {
	Func   AggFunc
	Col    int  // column of the partial value, and of the result
	Kind   Kind // of Col (Float SUM/AVG add as DOUBLE, others exactly)
	Weight int  // MIN/MAX of strings: column of the partial's WEIGHT_STRING; -1 for none
	// AVG: hidden columns holding the partial SUM and COUNT, and the result's scale (the
	// decimals of the AVG column the shards described).
	Sum, Count, Scale int
	// Internal: AVG's value as MySQL holds it inside an expression (DivScale digits,
	// truncated), not as it prints it.
	Internal bool
	// Only, when set, restricts the aggregate to the rows whose column OnlyCol holds
	// exactly these bytes; other rows leave it unchanged.
	Only    []byte
	OnlyCol int
}

// Groups combines consecutive rows of in whose keys compare equal into one row: the first
// row of the group with each aggregate column replaced by the combined value. With no aggs it
// is DISTINCT over the keys. in must be sorted by keys (ascending or descending).
func Groups(in Stream, keys []Key, aggs []Agg) Stream {
	return &groups{in: in, keys: keys, aggs: aggs}
}

type groups struct {
	in    Stream
	keys  []Key
	aggs  []Agg
	next  [][]byte // first row of the next group, already read
	done  bool
	state []aggState
}

type aggState struct {
	count int64
	dec   Dec
	f     float64
	null  bool // no non-NULL partial yet
	best  [][]byte
}

func (g *groups) Next() ([][]byte, error) {
	if g.next == nil {
		if g.done {
			return nil, nil
		}
		row, err := g.in.Next()
		if row == nil || err != nil {
			g.done = true
			return nil, err
		}
		g.next = Clone(row)
	}
	cur := g.next
	g.next = nil
	g.start(cur)
	for {
		row, err := g.in.Next()
		if err != nil {
			return nil, err
		}
		if row == nil {
			g.done = true
			break
		}
		if CompareRows(g.keys, cur, row) != 0 {
			g.next = Clone(row)
			break
		}
		if err := g.add(row); err != nil {
			return nil, err
		}
	}
	return g.finish(cur)
}

func (g *groups) start(row [][]byte) {
	if cap(g.state) < len(g.aggs) {
		g.state = make([]aggState, len(g.aggs))
	}
	g.state = g.state[:len(g.aggs)]
	for i := range g.state {
		g.state[i] = aggState{null: true}
	}
	_ = g.add(row)
}

func (g *groups) add(row [][]byte) error {
	for i, a := range g.aggs {
		st := &g.state[i]
		if a.Only != nil && !bytes.Equal(row[a.OnlyCol], a.Only) {
			continue
		}
		switch a.Func {
		case AggCount:
			n, _ := strconv.ParseInt(string(row[a.Col]), 10, 64)
			st.count += n
			st.null = false
		case AggSum:
			addPartial(st, a.Kind, row[a.Col])
		case AggAvg:
			addPartial(st, a.Kind, row[a.Sum])
			n, _ := strconv.ParseInt(string(row[a.Count]), 10, 64)
			st.count += n
		case AggMin, AggMax:
			v := row[a.Col]
			if v == nil {
				continue
			}
			if st.best == nil {
				st.best = pick(row, a)
				continue
			}
			k := Key{Col: 0, Weight: -1, Kind: a.Kind}
			if a.Weight >= 0 {
				k.Weight = 1
			}
			c := compareKey(k, pick(row, a), st.best)
			if (a.Func == AggMin && c < 0) || (a.Func == AggMax && c > 0) {
				st.best = pick(row, a)
			}
		}
	}
	return nil
}

// pick copies a MIN/MAX partial: its value and, for strings, its weight.
func pick(row [][]byte, a Agg) [][]byte {
	if a.Weight >= 0 {
		return Clone([][]byte{row[a.Col], row[a.Weight]})
	}
	return Clone([][]byte{row[a.Col]})
}

func addPartial(st *aggState, k Kind, v []byte) {
	if v == nil {
		return
	}
	if k == KindFloat {
		f, _ := strconv.ParseFloat(string(v), 64)
		st.f += f
	} else if d, ok := ParseDec(v); ok {
		if st.null {
			st.dec = d
		} else {
			st.dec.Add(&d)
		}
	}
	st.null = false
}

func (g *groups) finish(row [][]byte) ([][]byte, error) {
	for i, a := range g.aggs {
		st := &g.state[i]
		switch a.Func {
		case AggCount:
			row[a.Col] = strconv.AppendInt(nil, st.count, 10)
		case AggSum:
			switch {
			case st.null:
				row[a.Col] = nil
			case a.Kind == KindFloat:
				row[a.Col] = []byte(FormatFloat(st.f))
			default:
				row[a.Col] = []byte(st.dec.String())
			}
		case AggAvg:
			switch {
			case st.null || st.count == 0:
				row[a.Col] = nil
			case a.Kind == KindFloat:
				row[a.Col] = []byte(FormatFloat(st.f / float64(st.count)))
			default:
				q := st.dec.Quo(st.count, a.Scale)
				if a.Internal {
					q = st.dec.QuoTrunc(st.count, DivScale(st.dec.Scale))
				}
				row[a.Col] = []byte(q.String())
			}
		case AggMin, AggMax:
			if st.best == nil {
				row[a.Col] = nil
				if a.Weight >= 0 {
					row[a.Weight] = nil
				}
				continue
			}
			row[a.Col] = st.best[0]
			if a.Weight >= 0 {
				row[a.Weight] = st.best[1]
			}
		}
	}
	return row, nil
}
