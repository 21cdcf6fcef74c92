package planner

import (
	"errors"
	"strings"

	"github.com/shardproxy/shardproxy/sqlerr"
)

// Stored programs the parser cannot read: CREATE [OR REPLACE] [DEFINER = ...] TRIGGER |
// FUNCTION | EVENT, DROP TRIGGER | FUNCTION | EVENT [IF EXISTS] and ALTER FUNCTION |
// PROCEDURE | EVENT, taken apart with a small lexer (program_tokens.go) into the statement
// the backend receives (any DEFINER removed) and the CREATE PROCEDURE the parser reads to
// check the body (a function's RETURN read as SELECT). Where the program goes and what its
// body may name is program_targets.go's and stored.go's; the session runs it.

var errProgramShape = errors.New("a stored program takes a name, its clauses and a body")

// SyntaxError is the parse error (1064) of a statement the proxy cannot read: err says why.
func SyntaxError(err error) error {
	return sqlerr.New(sqlerr.ErParse, "You have an error in your SQL syntax; %s", err.Error())
}

// ProgramShape is how a CREATE, ALTER or DROP of a stored program was taken apart
// (ParseProgram). The zero value is none.
type ProgramShape struct {
	Drop  bool
	alter bool   // ALTER FUNCTION | PROCEDURE | EVENT
	Kind  string // TRIGGER, FUNCTION, EVENT (and PROCEDURE for ALTER)
	table string // a trigger's table
	event string // a trigger's INSERT, UPDATE or DELETE
	trig  triggerHead
	body  string // the body as written
	check string // what the parser reads: CREATE PROCEDURE with the body (RETURN read as SELECT); "" for none
	Send  string // what the backend receives
}

// Name is the program's name (a trigger's, which a DROP TRIGGER of its copies needs).
func (sh ProgramShape) Name() string { return sh.trig.name }

// ParseProgram takes apart a CREATE or DROP of a trigger, a stored function or an event, or
// an ALTER of a function, procedure or event; ok is false when sql is none of them (err is
// then to be ignored: the text is some other statement), err says what is wrong with one
// that is.
func ParseProgram(sql string) (shape ProgramShape, ok bool, err error) {
	text, ok := resolveVersionComments(sql)
	if !ok {
		return shape, false, nil
	}
	toks := tokenize(text)
	if len(toks) < 3 || !(toks[0].is("create") || toks[0].is("drop") || toks[0].is("alter")) {
		return shape, false, nil
	}
	if toks[0].is("alter") {
		return parseAlter(text, toks)
	}
	return parseProgram(text, toks)
}

// IsStoredProgram reports whether sql starts as a CREATE of a trigger, function or event, or
// an ALTER EVENT:
// its body may hold semicolons (BEGIN ... END), so the whole text is one statement, as
// MariaDB reads it (a statement after the body then fails the body's check).
func IsStoredProgram(sql string) bool {
	text, ok := resolveVersionComments(sql)
	if !ok {
		return false
	}
	toks := tokenize(text)
	if len(toks) < 2 || !toks[0].is("create") && !toks[0].is("alter") {
		return false
	}
	i := 1
	if i+1 < len(toks) && toks[i].is("or") && toks[i+1].is("replace") {
		i += 2
	}
	if i < len(toks) && toks[i].is("definer") {
		var err error
		if i, err = skipDefiner(toks, i+1); err != nil {
			return false
		}
	}
	if toks[0].is("alter") {
		return i < len(toks) && toks[i].is("event")
	}
	return i < len(toks) && (toks[i].is("trigger") || toks[i].is("function") || toks[i].is("event"))
}

// parseProgram takes a CREATE or DROP of a stored program apart; ok is false when text is
// none (err then nil).
func parseProgram(text string, toks []token) (shape ProgramShape, ok bool, err error) {
	i := 1
	if toks[0].is("drop") {
		kind := strings.ToUpper(toks[1].text)
		if kind != "TRIGGER" && kind != "FUNCTION" && kind != "EVENT" {
			return shape, false, nil
		}
		i = 2
		if i+1 < len(toks) && toks[i].is("if") && toks[i+1].is("exists") {
			i += 2
		}
		name, next, nameErr := unqualifiedName(toks, i)
		if nameErr != nil {
			return shape, true, nameErr
		}
		if next < len(toks) && !(next == len(toks)-1 && toks[next].text == ";") {
			return shape, true, SyntaxError(errProgramShape)
		}
		return ProgramShape{Drop: true, Kind: kind, trig: triggerHead{name: name}, Send: "DROP " + kind + " " + text[toks[2].pos:toks[next-1].end]}, name != "", nil
	}
	head := "CREATE"
	if i+1 < len(toks) && toks[i].is("or") && toks[i+1].is("replace") {
		head, i = "CREATE OR REPLACE", i+2
	}
	if i < len(toks) && toks[i].is("definer") {
		if i, err = skipDefiner(toks, i+1); err != nil {
			return shape, true, err
		}
	}
	if i >= len(toks) {
		return shape, false, nil
	}
	shape.Kind = strings.ToUpper(toks[i].text)
	switch shape.Kind {
	case "TRIGGER", "EVENT", "FUNCTION":
	case "AGGREGATE":
		return shape, true, sqlerr.NotSupported("CREATE AGGREGATE FUNCTION through the proxy")
	default:
		return shape, false, nil
	}
	start := toks[i].pos
	i++
	shape.trig.head = head
	if i+2 < len(toks) && toks[i].is("if") && toks[i+1].is("not") && toks[i+2].is("exists") {
		i, shape.trig.ifNotExists = i+3, "IF NOT EXISTS "
	}
	if shape.trig.name, i, err = unqualifiedName(toks, i); err != nil {
		return shape, true, err
	}
	var bodyAt int
	switch shape.Kind {
	case "TRIGGER":
		bodyAt, err = triggerClauses(toks, i, &shape.trig)
		shape.table, shape.event = shape.trig.table, shape.trig.event
	case "EVENT":
		bodyAt, err = eventClauses(toks, i)
	case "FUNCTION":
		bodyAt, err = functionClauses(toks, i)
	}
	if err != nil {
		return shape, true, err
	}
	if bodyAt >= len(toks) {
		return shape, true, SyntaxError(errProgramShape)
	}
	shape.body = strings.TrimRight(strings.TrimSpace(text[toks[bodyAt].pos:]), ";")
	shape.Send = head + " " + text[start:toks[bodyAt].pos] + shape.body
	shape.check = "CREATE PROCEDURE `shardproxy_check`() " + shape.body
	if shape.Kind == "FUNCTION" {
		shape.check = "CREATE PROCEDURE `shardproxy_check`() " + returnAsSelect(shape.body, toks, bodyAt)
	}
	return shape, true, nil
}

// unqualifiedName reads a name at toks[i] and returns where it ends; a qualified one is
// refused.
func unqualifiedName(toks []token, i int) (string, int, error) {
	if i >= len(toks) || !toks[i].name() {
		return "", i, SyntaxError(errProgramShape)
	}
	if i+1 < len(toks) && toks[i+1].text == "." {
		return "", i, sqlerr.NotSupported("a stored program named with its database through the proxy: USE the database and name it alone")
	}
	return toks[i].ident(), i + 1, nil
}

// skipDefiner skips "= user" after DEFINER: 'u'@'h', `u`@`h`, u@h, a role, CURRENT_USER[()].
func skipDefiner(toks []token, i int) (int, error) {
	if i >= len(toks) || toks[i].text != "=" {
		return i, SyntaxError(errProgramShape)
	}
	i++
	if i >= len(toks) || !toks[i].name() && toks[i].kind != tokString {
		return i, SyntaxError(errProgramShape)
	}
	i++
	switch {
	case i+1 < len(toks) && toks[i].text == "(" && toks[i+1].text == ")":
		i += 2
	case i+1 < len(toks) && toks[i].text == "@" && (toks[i+1].name() || toks[i+1].kind == tokString):
		i += 2
	}
	return i, nil
}

// triggerHead is what a CREATE TRIGGER says before its body (DROP TRIGGER: the name).
type triggerHead struct {
	head, ifNotExists                        string // CREATE [OR REPLACE]; "IF NOT EXISTS " or ""
	name, timing, event, table, order, other string // order: FOLLOWS or PRECEDES the trigger other
}

// triggerClauses reads {BEFORE|AFTER} {INSERT|UPDATE|DELETE} ON table FOR EACH ROW
// [{FOLLOWS|PRECEDES} name] into h and returns where the body starts.
func triggerClauses(toks []token, i int, h *triggerHead) (int, error) {
	if i+2 >= len(toks) || !(toks[i].is("before") || toks[i].is("after")) ||
		!(toks[i+1].is("insert") || toks[i+1].is("update") || toks[i+1].is("delete")) || !toks[i+2].is("on") {
		return i, SyntaxError(errProgramShape)
	}
	h.timing, h.event = strings.ToUpper(toks[i].text), strings.ToUpper(toks[i+1].text)
	var err error
	if h.table, i, err = unqualifiedName(toks, i+3); err != nil {
		return i, err
	}
	if i+2 >= len(toks) || !toks[i].is("for") || !toks[i+1].is("each") || !toks[i+2].is("row") {
		return i, SyntaxError(errProgramShape)
	}
	i += 3
	if i < len(toks) && (toks[i].is("follows") || toks[i].is("precedes")) {
		h.order = strings.ToUpper(toks[i].text)
		if h.other, i, err = unqualifiedName(toks, i+1); err != nil {
			return i, err
		}
	}
	return i, nil
}

// eventClauses reads ON SCHEDULE ... [ON COMPLETION ...] [ENABLE|DISABLE ...] [COMMENT '...']
// DO and returns where the body starts (see eventTail).
func eventClauses(toks []token, i int) (int, error) {
	if i+1 >= len(toks) || !toks[i].is("on") || !toks[i+1].is("schedule") {
		return i, SyntaxError(errProgramShape)
	}
	at, err := eventTail(toks, i+2)
	if err == nil && at >= len(toks) {
		err = SyntaxError(errProgramShape)
	}
	return at, err
}

// typeModifiers may follow a function's return type.
var typeModifiers = map[string]bool{"UNSIGNED": true, "SIGNED": true, "ZEROFILL": true, "BINARY": true, "ASCII": true,
	"UNICODE": true, "BYTE": true, "PRECISION": true, "VARYING": true}

// functionClauses reads (params) RETURNS type [characteristics] and returns where the
// body starts. The type is a word, an argument list of literals and modifiers.
func functionClauses(toks []token, i int) (int, error) {
	if i >= len(toks) || toks[i].text != "(" {
		return i, sqlerr.NotSupported("CREATE FUNCTION without a parameter list (a UDF loads a library on the backend)")
	}
	depth := 0
	for ; i < len(toks); i++ {
		if toks[i].text == "(" {
			depth++
		} else if toks[i].text == ")" {
			if depth--; depth == 0 {
				break
			}
		}
	}
	i++
	if i+1 >= len(toks) || !toks[i].is("returns") || toks[i+1].kind != tokWord {
		return i, SyntaxError(errProgramShape)
	}
	for i += 2; i < len(toks); {
		t := toks[i]
		switch {
		case t.text == "(":
			j := i + 1
			for j < len(toks) && (toks[j].kind == tokString || toks[j].kind == tokNumber || toks[j].text == ",") {
				j++
			}
			if j >= len(toks) || toks[j].text != ")" {
				return i, sqlerr.NotSupported("a function's return type holding more than literals through the proxy")
			}
			i = j + 1
		case typeModifiers[strings.ToUpper(t.text)] && t.kind == tokWord:
			i++
		case (t.is("charset") || t.is("collate")) && i+1 < len(toks) && toks[i+1].name():
			i += 2
		case t.is("character") && i+2 < len(toks) && toks[i+1].is("set") && toks[i+2].name():
			i += 3
		case t.is("soname"):
			return i, sqlerr.NotSupported("CREATE FUNCTION ... SONAME: it loads a shared library on the backend")
		default:
			return characteristics(toks, i), nil
		}
	}
	return i, nil
}

// characteristics skips a routine's characteristics and returns where the body starts.
func characteristics(toks []token, i int) int {
	for i < len(toks) {
		switch {
		case toks[i].is("comment") && i+1 < len(toks) && toks[i+1].kind == tokString:
			i += 2
		case toks[i].is("deterministic"):
			i++
		case i+1 < len(toks) && (toks[i].is("not") && toks[i+1].is("deterministic") || toks[i].is("language") && toks[i+1].is("sql") ||
			toks[i].is("contains") && toks[i+1].is("sql") || toks[i].is("no") && toks[i+1].is("sql")):
			i += 2
		case i+2 < len(toks) && ((toks[i].is("reads") || toks[i].is("modifies")) && toks[i+1].is("sql") && toks[i+2].is("data") ||
			toks[i].is("sql") && toks[i+1].is("security") && (toks[i+2].is("definer") || toks[i+2].is("invoker"))):
			i += 3
		default:
			return i
		}
	}
	return i
}

// returnAsSelect is body with every RETURN keyword (a reserved word: never a name when
// unquoted) read as SELECT.
func returnAsSelect(body string, toks []token, bodyAt int) string {
	base := toks[bodyAt].pos
	var b strings.Builder
	last := 0
	for k, t := range toks[bodyAt:] {
		if t.is("return") && (k == 0 || toks[bodyAt+k-1].text != ".") && t.pos-base+len(t.text) <= len(body) {
			b.WriteString(body[last : t.pos-base])
			b.WriteString("SELECT")
			last = t.pos - base + len(t.text)
		}
	}
	b.WriteString(body[last:])
	return b.String()
}

// ALTER FUNCTION | PROCEDURE name [characteristic ...] and ALTER [DEFINER = ...] EVENT name
// [ON SCHEDULE ...] [ON COMPLETION [NOT] PRESERVE] [RENAME TO name] [ENABLE | DISABLE [ON
// SLAVE]] [COMMENT '...'] [DO body], which the parser cannot read (the session runs
// them). A routine's characteristics (COMMENT, LANGUAGE SQL, CONTAINS SQL, NO SQL, READS or
// MODIFIES SQL DATA, SQL SECURITY) change no statement it runs; an event's new body is
// checked as a CREATE EVENT's, its schedule likewise, and any DEFINER clause is removed.
// They go where the program lives: a function on every shard of a database with rows on
// several, a procedure and an event on the default shard.

// parseAlter takes an ALTER of a stored program apart (toks[0] is ALTER); ok is false when
// text is none.
func parseAlter(text string, toks []token) (shape ProgramShape, ok bool, err error) {
	i := 1
	if toks[i].is("definer") {
		if i, err = skipDefiner(toks, i+1); err != nil {
			return shape, true, err
		}
		if i >= len(toks) || !toks[i].is("event") {
			return shape, i < len(toks) && (toks[i].is("function") || toks[i].is("procedure")), SyntaxError(errProgramShape)
		}
	}
	if i >= len(toks) {
		return shape, false, nil
	}
	shape = ProgramShape{alter: true, Kind: strings.ToUpper(toks[i].text)}
	switch shape.Kind {
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
	if shape.Kind != "EVENT" {
		if characteristics(toks[:end], i) != end {
			return shape, true, SyntaxError(errProgramShape)
		}
		shape.Send = "ALTER " + strings.TrimRight(strings.TrimSpace(text[start:]), ";")
		return shape, true, nil
	}
	bodyAt, err := eventTail(toks[:end], i)
	if err != nil {
		return shape, true, err
	}
	shape.Send = "ALTER " + strings.TrimRight(strings.TrimSpace(text[start:]), ";")
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
				return i, SyntaxError(errProgramShape)
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
