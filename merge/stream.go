package merge

import (
	"bytes"
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"slices"
)

// Stream yields rows: one value per column, nil for NULL. A row and its values stay valid
// until the next call to Next on the same stream. Next returns a nil row at the end.
type Stream interface {
	Next() ([][]byte, error)
}

// Key is one sort key of a row.
type Key struct {
	Col    int  // column holding the value
	Weight int  // column holding the value's WEIGHT_STRING for strings; -1 for none
	Kind   Kind // how values compare
	Desc   bool
}

// CompareRows orders two rows by keys; NULL sorts first ascending and last descending, as
// in MySQL.
func CompareRows(keys []Key, a, b [][]byte) int {
	for _, k := range keys {
		if c := compareKey(k, a, b); c != 0 {
			if k.Desc {
				return -c
			}
			return c
		}
	}
	return 0
}

func compareKey(k Key, a, b [][]byte) int {
	va, vb := a[k.Col], b[k.Col]
	switch {
	case va == nil && vb == nil:
		return 0
	case va == nil:
		return -1
	case vb == nil:
		return 1
	}
	if k.Kind == KindString && k.Weight >= 0 {
		return bytes.Compare(a[k.Weight], b[k.Weight])
	}
	return Compare(k.Kind, va, vb)
}

// Clone copies a row into memory of its own (one allocation for all values).
func Clone(row [][]byte) [][]byte {
	n := 0
	for _, v := range row {
		n += len(v)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(row))
	for i, v := range row {
		if v == nil {
			continue
		}
		start := len(buf)
		buf = append(buf, v...)
		out[i] = buf[start:len(buf):len(buf)]
	}
	return out
}

// Sorted merges streams that are each sorted by keys into one sorted stream (k-way merge).
// Rows with equal keys keep the order of their streams.
func Sorted(streams []Stream, keys []Key) Stream {
	return &sorted{streams: streams, keys: keys, heads: make([][][]byte, len(streams)), last: -1}
}

type sorted struct {
	streams []Stream
	keys    []Key
	heads   [][][]byte
	order   []int // heap of stream indexes by head row
	last    int   // stream whose head was returned last; -1 before the first call
	started bool
}

func (m *sorted) Len() int { return len(m.order) }
func (m *sorted) Less(i, j int) bool {
	a, b := m.order[i], m.order[j]
	if c := CompareRows(m.keys, m.heads[a], m.heads[b]); c != 0 {
		return c < 0
	}
	return a < b
}
func (m *sorted) Swap(i, j int) { m.order[i], m.order[j] = m.order[j], m.order[i] }
func (m *sorted) Push(x any)    { m.order = append(m.order, x.(int)) }
func (m *sorted) Pop() any {
	x := m.order[len(m.order)-1]
	m.order = m.order[:len(m.order)-1]
	return x
}

func (m *sorted) Next() ([][]byte, error) {
	if !m.started {
		m.started = true
		for i, s := range m.streams {
			row, err := s.Next()
			if err != nil {
				return nil, err
			}
			if row != nil {
				m.heads[i] = row
				m.order = append(m.order, i)
			}
		}
		heap.Init(m)
	} else if m.last >= 0 {
		row, err := m.streams[m.last].Next()
		if err != nil {
			return nil, err
		}
		if row == nil {
			heap.Pop(m)
		} else {
			m.heads[m.last] = row
			heap.Fix(m, 0)
		}
	}
	if len(m.order) == 0 {
		m.last = -1
		return nil, nil
	}
	m.last = m.order[0]
	return m.heads[m.last], nil
}

// Interleaved reads streams in turn, one row from each, so that every backend keeps
// streaming; for results whose order does not matter.
func Interleaved(streams []Stream) Stream {
	return &interleaved{streams: slices.Clone(streams)}
}

type interleaved struct {
	streams []Stream
	next    int
}

func (m *interleaved) Next() ([][]byte, error) {
	for len(m.streams) > 0 {
		i := m.next % len(m.streams)
		row, err := m.streams[i].Next()
		if err != nil {
			return nil, err
		}
		if row != nil {
			m.next = i + 1
			return row, nil
		}
		m.streams = slices.Delete(m.streams, i, i+1)
		m.next = i
	}
	return nil, nil
}

// Limit skips offset rows, then passes at most count (count < 0: all).
func Limit(in Stream, offset, count int64) Stream {
	return &limit{in: in, offset: offset, count: count}
}

type limit struct {
	in            Stream
	offset, count int64
}

func (l *limit) Next() ([][]byte, error) {
	for l.offset > 0 {
		row, err := l.in.Next()
		if row == nil || err != nil {
			return nil, err
		}
		l.offset--
	}
	if l.count == 0 {
		return nil, nil
	}
	row, err := l.in.Next()
	if row != nil && l.count > 0 {
		l.count--
	}
	return row, err
}

// Filter passes the rows keep accepts.
func Filter(in Stream, keep func([][]byte) (bool, error)) Stream {
	return filter{in: in, keep: keep}
}

type filter struct {
	in   Stream
	keep func([][]byte) (bool, error)
}

func (f filter) Next() ([][]byte, error) {
	for {
		row, err := f.in.Next()
		if row == nil || err != nil {
			return nil, err
		}
		ok, err := f.keep(row)
		if err != nil {
			return nil, err
		}
		if ok {
			return row, nil
		}
	}
}

// ErrTooManyRows is returned by SortAll and TopN when they would hold more rows than their
// bound.
var ErrTooManyRows = errors.New("merge: too many rows to hold")

// SortAll reads all of in and returns its rows sorted by keys (stable). Memory grows with
// the rows read; SortAllAtMost bounds them.
func SortAll(in Stream, keys []Key) Stream { return SortAllAtMost(in, keys, 0) }

// SortAllAtMost is SortAll holding at most max rows (max <= 0: no bound); one more fails
// with ErrTooManyRows.
func SortAllAtMost(in Stream, keys []Key, max int) Stream {
	return &sortAll{in: in, keys: keys, max: max}
}

type sortAll struct {
	in   Stream
	keys []Key
	max  int
	rows [][][]byte
	done bool
}

func (s *sortAll) Next() ([][]byte, error) {
	if !s.done {
		s.done = true
		for {
			row, err := s.in.Next()
			if err != nil {
				return nil, err
			}
			if row == nil {
				break
			}
			if s.max > 0 && len(s.rows) >= s.max {
				return nil, fmt.Errorf("%w: more than %d", ErrTooManyRows, s.max)
			}
			s.rows = append(s.rows, Clone(row))
		}
		slices.SortStableFunc(s.rows, func(a, b [][]byte) int { return CompareRows(s.keys, a, b) })
	}
	if len(s.rows) == 0 {
		return nil, nil
	}
	row := s.rows[0]
	s.rows[0] = nil
	s.rows = s.rows[1:]
	return row, nil
}

// TopN reads all of in and returns its first n rows as a stable sort by keys would, holding
// only n rows at a time (a heap of the best n so far). n larger than max (max > 0) holds at
// most max rows: one more fails with ErrTooManyRows.
func TopN(in Stream, keys []Key, n int64, max int) Stream {
	return &topN{in: in, keys: keys, n: n, max: max}
}

type topN struct {
	in   Stream
	keys []Key
	n    int64
	max  int
	heap topHeap
	out  [][][]byte
	done bool
}

// topRow is a held row and its arrival order (equal keys keep it).
type topRow struct {
	row [][]byte
	seq int64
}

// topHeap is a max-heap: the worst held row on top, replaced by a better one.
type topHeap struct {
	keys []Key
	rows []topRow
}

func (h *topHeap) cmp(a, b topRow) int {
	if c := CompareRows(h.keys, a.row, b.row); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}
func (h *topHeap) Len() int           { return len(h.rows) }
func (h *topHeap) Less(i, j int) bool { return h.cmp(h.rows[i], h.rows[j]) > 0 }
func (h *topHeap) Swap(i, j int)      { h.rows[i], h.rows[j] = h.rows[j], h.rows[i] }
func (h *topHeap) Push(x any)         { h.rows = append(h.rows, x.(topRow)) }
func (h *topHeap) Pop() any {
	x := h.rows[len(h.rows)-1]
	h.rows = h.rows[:len(h.rows)-1]
	return x
}

func (t *topN) Next() ([][]byte, error) {
	if !t.done {
		t.done = true
		if err := t.fill(); err != nil {
			return nil, err
		}
	}
	if len(t.out) == 0 {
		return nil, nil
	}
	row := t.out[0]
	t.out[0] = nil
	t.out = t.out[1:]
	return row, nil
}

func (t *topN) fill() error {
	t.heap.keys = t.keys
	for seq := int64(0); ; seq++ {
		row, err := t.in.Next()
		if err != nil {
			return err
		}
		if row == nil {
			break
		}
		if t.n <= 0 {
			continue // LIMIT 0: read to the end, hold nothing
		}
		if int64(t.heap.Len()) < t.n {
			if t.max > 0 && t.heap.Len() >= t.max {
				return fmt.Errorf("%w: more than %d", ErrTooManyRows, t.max)
			}
			heap.Push(&t.heap, topRow{row: Clone(row), seq: seq})
			continue
		}
		cand := topRow{row: row, seq: seq}
		if t.heap.cmp(cand, t.heap.rows[0]) < 0 {
			t.heap.rows[0] = topRow{row: Clone(row), seq: seq}
			heap.Fix(&t.heap, 0)
		}
	}
	rows := t.heap.rows
	slices.SortFunc(rows, t.heap.cmp)
	t.out = make([][][]byte, len(rows))
	for i, r := range rows {
		t.out[i] = r.row
	}
	t.heap.rows = nil
	return nil
}
