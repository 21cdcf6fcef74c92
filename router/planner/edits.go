package planner

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// edits is the log of the in-place edits planning makes to a statement's tree while it
// writes each shard's SQL (physical names, pushed-down LIMITs, hidden columns, session
// values, ...). Every edit goes through it (name, number, set, replaced) and undo puts back
// what each one replaced, latest first, so that a planning entry leaves the caller's tree as
// it found it. The edits of the analysis are made again (redo) on the tree a prepared
// statement's bound route keeps (bound.go). The zero value is an empty log; a log belongs to
// one planning call and is not safe for concurrent use.
type edits struct {
	log []edit
	// swaps are the nodes a walk replaced (the analyzer's session values, information_schema
	// literals): the parent's field is set by the parser's Accept, so undo walks the tree
	// again to put the originals back.
	swaps []swap
}

// edit is one field changed in place: a name (the common edit, logged without allocating),
// a number, or any other field through fn.
type edit struct {
	name     *ast.CIStr
	was, now ast.CIStr
	num      *int
	wasN     int
	nowN     int
	fn       func(redo bool) // sets the field to its old value, or again to its new one
}

// swap is a node a walk replaced by another.
type swap struct{ old, now ast.Node }

// add logs d.
func (e *edits) add(d edit) {
	if e.log == nil {
		e.log = make([]edit, 0, 4) // a rename and its alias, a few fields of a scatter's statement
	}
	e.log = append(e.log, d)
}

// name sets *p to v.
func (e *edits) name(p *ast.CIStr, v ast.CIStr) {
	e.add(edit{name: p, was: *p, now: v})
	*p = v
}

// number sets *p to v.
func (e *edits) number(p *int, v int) {
	if *p != v {
		e.add(edit{num: p, wasN: *p, nowN: v})
		*p = v
	}
}

// set sets *p to v, logging the old value in e.
func set[T any](e *edits, p *T, v T) {
	old := *p
	e.add(edit{fn: func(redo bool) {
		if redo {
			*p = v
		} else {
			*p = old
		}
	}})
	*p = v
}

// replaced records that a walk put now in the place of old.
func (e *edits) replaced(old, now ast.Node) ast.Node {
	e.swaps = append(e.swaps, swap{old, now})
	return now
}

// source points a FROM source at another (introspect.Filter), under alias as.
func (e *edits) source(ts *ast.TableSource, as ast.CIStr, src ast.ResultSetNode) {
	e.name(&ts.AsName, as)
	set(e, &ts.Source, src)
}

// mark is the log's length: what has been edited so far (see since).
func (e *edits) mark() int { return len(e.log) }

// upTo is a copy of the log of the edits made before mark m (and every swap so far), for
// redo.
func (e *edits) upTo(m int) edits {
	return edits{log: slices.Clone(e.log[:m]), swaps: slices.Clone(e.swaps)}
}

// undo puts back every value the edits replaced in root's tree, latest edit first, and
// empties the log.
func (e *edits) undo(root ast.Node) {
	e.undoTo(0)
	if len(e.swaps) > 0 {
		back := make(Swapper, len(e.swaps))
		for _, s := range e.swaps {
			back[s.now] = s.old
		}
		root.Accept(back)
	}
	e.swaps = e.swaps[:0]
}

// undoTo puts back the values of the edits logged since mark m (no swaps: see undo).
func (e *edits) undoTo(m int) {
	for i := len(e.log) - 1; i >= m; i-- {
		switch d := e.log[i]; {
		case d.name != nil:
			*d.name = d.was
		case d.num != nil:
			*d.num = d.wasN
		default:
			d.fn(false)
		}
	}
	clear(e.log[m:])
	e.log = e.log[:m]
}

// redo makes the edits again on root's tree, in the order they were made.
func (e *edits) redo(root ast.Node) {
	if len(e.swaps) > 0 {
		again := make(Swapper, len(e.swaps))
		for _, s := range e.swaps {
			again[s.old] = s.now
		}
		root.Accept(again)
	}
	for _, d := range e.log {
		switch {
		case d.name != nil:
			*d.name = d.now
		case d.num != nil:
			*d.num = d.nowN
		default:
			d.fn(true)
		}
	}
}

// Swapper is a walk that puts in each of its keys' places its value (and that value's, when
// a node replaced was itself a replacement: DATABASE() became 'shop', which became 'shop_0').
type Swapper map[ast.Node]ast.Node

// Enter replaces n when it is a key (and leaves the replacement's children alone).
func (s Swapper) Enter(n ast.Node) (ast.Node, bool) {
	r, ok := s[n]
	if !ok {
		return n, false
	}
	for next, ok := s[r]; ok; next, ok = s[r] {
		r = next
	}
	return r, true
}

// Leave keeps n.
func (s Swapper) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// rename points a table reference at its physical table. Columns qualified by the logical
// name keep working through an alias, where the statement allows one.
func (e *edits) rename(r TableRef, phys string, alias bool) {
	if phys == r.Node.Name.O {
		return
	}
	if alias && !r.bare && r.source != nil && r.source.AsName.O == "" {
		e.name(&r.source.AsName, r.Node.Name)
	}
	e.name(&r.Node.Name, ast.NewCIStr(phys))
}

// nameFields gives each field named by its text the text as its alias: a restore would
// change the name MySQL gives the column (see namedByText).
func (e *edits) nameFields(fields []*ast.SelectField) {
	for _, f := range fields {
		e.name(&f.AsName, ast.NewCIStr(strings.TrimSpace(fieldText(f))))
	}
}

// fieldText is the text of f as the client wrote it. The parser converts a node's text
// to UTF-8 on the first Text() and keeps the result in the node; valid UTF-8 text is the
// same either way, and is read without that write.
func fieldText(f *ast.SelectField) string {
	if t := f.OriginalText(); utf8.ValidString(t) {
		return t
	}
	return f.Text()
}
