package router

import (
	"strings"

	"github.com/shardproxy/shardproxy/sqlerr"
)

// ALTER FUNCTION | PROCEDURE name [characteristic ...] and ALTER [DEFINER = ...] EVENT name
// [ON SCHEDULE ...] [ON COMPLETION [NOT] PRESERVE] [RENAME TO name] [ENABLE | DISABLE [ON
// SLAVE]] [COMMENT '...'] [DO body], which the parser cannot read (stored_programs.go runs
// them). A routine's characteristics (COMMENT, LANGUAGE SQL, CONTAINS SQL, NO SQL, READS or
// MODIFIES SQL DATA, SQL SECURITY) change no statement it runs; an event's new body is
// checked as a CREATE EVENT's, its schedule likewise, and any DEFINER clause is removed.
// They go where the program lives: a function on every shard of a database with rows on
// several, a procedure and an event on the default shard.

// parseAlter takes an ALTER of a stored program apart (toks[0] is ALTER); ok is false when
// text is none.
func parseAlter(text string, toks []token) (shape programShape, ok bool, err error) {
	i := 1
	if toks[i].is("definer") {
		if i, err = skipDefiner(toks, i+1); err != nil {
			return shape, true, err
		}
		if i >= len(toks) || !toks[i].is("event") {
			return shape, i < len(toks) && (toks[i].is("function") || toks[i].is("procedure")), syntaxError(errProgramShape)
		}
	}
	if i >= len(toks) {
		return shape, false, nil
	}
	shape = programShape{alter: true, kind: strings.ToUpper(toks[i].text)}
	switch shape.kind {
	case "FUNCTION", "PROCEDURE", "EVENT":
	default:
		return shape, false, nil
	}
	start := toks[i].pos
	if _, i, err = unqualifiedName(toks, i+1); err != nil {
		return shape, true, err
	}
	end := len(toks)
	if end > i && toks[end-1].text == ";" {
		end--
	}
	if shape.kind != "EVENT" {
		if characteristics(toks[:end], i) != end {
			return shape, true, syntaxError(errProgramShape)
		}
		shape.send = "ALTER " + strings.TrimRight(strings.TrimSpace(text[start:]), ";")
		return shape, true, nil
	}
	bodyAt, err := eventTail(toks[:end], i)
	if err != nil {
		return shape, true, err
	}
	shape.send = "ALTER " + strings.TrimRight(strings.TrimSpace(text[start:]), ";")
	if bodyAt < end {
		shape.body = strings.TrimRight(strings.TrimSpace(text[toks[bodyAt].pos:]), ";")
		shape.check = "CREATE PROCEDURE `shardproxy_check`() " + shape.body
	}
	return shape, true, nil
}

// eventTail reads an event's clauses from toks[i] and returns where the body after DO starts
// (len(toks) without DO). A schedule holds words, literals and operators, a new name (ALTER
// EVENT ... RENAME TO) is unqualified.
func eventTail(toks []token, i int) (int, error) {
	for ; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.is("do"):
			if i+1 >= len(toks) {
				return i, syntaxError(errProgramShape)
			}
			return i + 1, nil
		case t.is("rename") && i+1 < len(toks) && toks[i+1].is("to"):
			_, next, err := unqualifiedName(toks, i+2)
			if err != nil {
				return i, err
			}
			i = next - 1
		case t.text == "(" && i+1 < len(toks) && toks[i+1].text == ")":
			i++
		case t.kind == tokWord || t.kind == tokString || t.kind == tokNumber:
		case len(t.text) == 1 && strings.Contains("+-:,", t.text):
		default:
			return i, sqlerr.NotSupported("an event schedule holding %q through the proxy (only literals, words and + - : in it)", t.text)
		}
	}
	return len(toks), nil
}
