package router

import (
	"context"
	"errors"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Stored programs the parser cannot read (see unparsed.go): CREATE [OR REPLACE]
// [DEFINER = ...] TRIGGER | FUNCTION | EVENT and DROP TRIGGER | FUNCTION | EVENT [IF EXISTS].
// Their bodies run with the privileges of their definer, so each is taken apart and its
// body checked as a procedure body (routine_body.go):
//
//   - the body is planned as the body of CREATE PROCEDURE (a function's RETURN read as
//     SELECT: both evaluate the same expression); the text is sent only when the plan
//     leaves the body as written (no names the proxy must rewrite);
//   - any DEFINER clause is removed: the program is defined by the proxy's backend account
//     (CURRENT_USER), whose privileges the barrier already stands in front of; a definer the
//     client names (root, say) is never sent;
//   - a function must be a stored function with a parameter list, RETURNS a plain data type
//     (UDFs, RETURNS ... SONAME, load a library on the backend and stay refused);
//   - an event's schedule may hold only literals, words and operators (no subquery, no
//     call with arguments);
//   - names are unqualified: they live in the session's database;
//   - a trigger's table is a single table of the session's database.
//
// In a database with sharded tables, or tables on several shards, the program is created on
// the shards where it must exist and its body may name only rows that are there
// (stored_sharded.go, stored_scope.go).

var errProgramShape = errors.New("a stored program takes a name, its clauses and a body")

// programShape is how a CREATE or DROP of a stored program was taken apart.
type programShape struct {
	drop  bool
	alter bool   // ALTER FUNCTION | PROCEDURE | EVENT
	kind  string // TRIGGER, FUNCTION, EVENT (and PROCEDURE for ALTER)
	table string // a trigger's table
	event string // a trigger's INSERT, UPDATE or DELETE
	trig  triggerHead
	body  string // the body as written
	check string // what the parser reads: CREATE PROCEDURE with the body (RETURN read as SELECT); "" for none
	send  string // what the backend receives
}

// storedProgram runs a CREATE or DROP of a trigger, a stored function or an event, or an
// ALTER of a function, procedure or event (stored_alter.go); ok is false when sql is none of
// them.
func (s *Session) storedProgram(ctx context.Context, snap *rules.Snapshot, sql string, w wire.PacketWriter) (ok bool, err error) {
	text, ok := resolveVersionComments(sql)
	if !ok {
		return false, nil
	}
	toks := tokenize(text)
	if len(toks) < 3 || !(toks[0].is("create") || toks[0].is("drop") || toks[0].is("alter")) {
		return false, nil
	}
	shape, ok, err := parseProgram(text, toks)
	if toks[0].is("alter") {
		shape, ok, err = parseAlter(text, toks)
	}
	if !ok {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	if s.db == "" {
		return true, sqlerr.New(sqlerr.ErNoDB, "No database selected")
	}
	db, found := snap.Database(s.db)
	if !found {
		return true, sqlerr.New(sqlerr.ErNoDB, "No database selected")
	}
	if db.Sharded() || len(db.Shards()) > 1 {
		return true, s.shardedProgram(ctx, snap, db, shape, sql, w) // stored_sharded.go
	}
	if err := s.checkProgram(snap, db, shape); err != nil {
		return true, err
	}
	s.route = RouteSingle
	s.publish(sql)
	defer s.publish("")
	return true, s.withDeadline(ctx, snap, hintDeadline{}, func(ctx context.Context) error {
		if err := s.checkWrite(ctx, db.DefaultShard); err != nil {
			return err
		}
		return lostWrite(s.run(ctx, snap, db.DefaultShard, shape.send, false, w))
	})
}

// isStoredProgram reports whether sql starts as a CREATE of a trigger, function or event, or
// an ALTER EVENT:
// its body may hold semicolons (BEGIN ... END), so the whole text is one statement, as
// MariaDB reads it (a statement after the body then fails the body's check).
func isStoredProgram(sql string) bool {
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

// checkProgram plans the parts of shape: the body as a procedure's, the trigger's table.
func (s *Session) checkProgram(snap *rules.Snapshot, db *rules.Database, shape programShape) error {
	if shape.table != "" {
		if t := db.Table(strings.ToLower(shape.table)); t.Kind != rules.KindSingle {
			return sqlerr.NotSupported("a trigger on the %s table %s: it would have to exist on every physical table", t.Kind, shape.table)
		}
		text := "SELECT 1 FROM " + quoteName(shape.table)
		st, err := s.parseOne(text)
		if err != nil {
			return err
		}
		p, err := s.plan(snap, st, text, nil)
		if err != nil {
			return err
		}
		if r, ok := plan.RouteOf(p); !ok || r.Shard != db.DefaultShard || !r.Names.Empty() {
			return sqlerr.NotSupported("a trigger on %s: not a table of the database's default shard", shape.table)
		}
	}
	if shape.check == "" { // DROP, ALTER of characteristics
		return nil
	}
	st, err := s.parseOne(shape.check)
	if err != nil {
		return err
	}
	if _, isProc := st.(*ast.ProcedureInfo); !isProc {
		return syntaxError(errProgramShape)
	}
	p, err := s.plan(snap, st, shape.check, nil)
	if err != nil {
		return err
	}
	if r, ok := plan.RouteOf(p); !ok || r.SQL != shape.check || r.Shard != db.DefaultShard {
		return sqlerr.NotSupported("a %s body naming what the proxy must rewrite (qualified names, session functions, tables of other shards): name only tables of the session's database, unqualified", strings.ToLower(shape.kind))
	}
	return nil
}

// parseProgram takes a CREATE or DROP of a stored program apart; ok is false when text is
// none (err then nil).
func parseProgram(text string, toks []token) (shape programShape, ok bool, err error) {
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
			return shape, true, syntaxError(errProgramShape)
		}
		return programShape{drop: true, kind: kind, trig: triggerHead{name: name}, send: "DROP " + kind + " " + text[toks[2].pos:toks[next-1].end]}, name != "", nil
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
	shape.kind = strings.ToUpper(toks[i].text)
	switch shape.kind {
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
	switch shape.kind {
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
		return shape, true, syntaxError(errProgramShape)
	}
	shape.body = strings.TrimRight(strings.TrimSpace(text[toks[bodyAt].pos:]), ";")
	shape.send = head + " " + text[start:toks[bodyAt].pos] + shape.body
	shape.check = "CREATE PROCEDURE `shardproxy_check`() " + shape.body
	if shape.kind == "FUNCTION" {
		shape.check = "CREATE PROCEDURE `shardproxy_check`() " + returnAsSelect(shape.body, toks, bodyAt)
	}
	return shape, true, nil
}

// unqualifiedName reads a name at toks[i] and returns where it ends; a qualified one is
// refused.
func unqualifiedName(toks []token, i int) (string, int, error) {
	if i >= len(toks) || !toks[i].name() {
		return "", i, syntaxError(errProgramShape)
	}
	if i+1 < len(toks) && toks[i+1].text == "." {
		return "", i, sqlerr.NotSupported("a stored program named with its database through the proxy: USE the database and name it alone")
	}
	return toks[i].ident(), i + 1, nil
}

// skipDefiner skips "= user" after DEFINER: 'u'@'h', `u`@`h`, u@h, a role, CURRENT_USER[()].
func skipDefiner(toks []token, i int) (int, error) {
	if i >= len(toks) || toks[i].text != "=" {
		return i, syntaxError(errProgramShape)
	}
	i++
	if i >= len(toks) || !toks[i].name() && toks[i].kind != tokString {
		return i, syntaxError(errProgramShape)
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
		return i, syntaxError(errProgramShape)
	}
	h.timing, h.event = strings.ToUpper(toks[i].text), strings.ToUpper(toks[i+1].text)
	var err error
	if h.table, i, err = unqualifiedName(toks, i+3); err != nil {
		return i, err
	}
	if i+2 >= len(toks) || !toks[i].is("for") || !toks[i+1].is("each") || !toks[i+2].is("row") {
		return i, syntaxError(errProgramShape)
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
		return i, syntaxError(errProgramShape)
	}
	at, err := eventTail(toks, i+2)
	if err == nil && at >= len(toks) {
		err = syntaxError(errProgramShape)
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
		return i, syntaxError(errProgramShape)
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
