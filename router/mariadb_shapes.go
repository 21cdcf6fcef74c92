package router

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/introspect"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/router/sqlscan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// MariaDB-only shapes of everyday statements the TiDB parser cannot read (see unparsed.go).
// Each is taken apart into a statement the parser reads and a part whose effect is known:
//
//   - MariaDB-only DDL: see mariadb_ddl.go;
//   - SELECT ... INTO @var [, @var ...] (the clause right after the select list or at the
//     end): planned as the SELECT without it; the clause only assigns user variables, and is
//     sent at the end of the planned statement, where MariaDB takes it too.

var selectPrefix = regexp.MustCompile(`(?is)^\s*SELECT\s`)

// splitSelectInto takes MariaDB's SELECT ... INTO @a [, @b ...] apart: the SELECT without the
// clause, and the clause. The clause must stand right after the select list (FROM follows it)
// or at the end of the statement, and hold only user variables. ok is false otherwise.
func splitSelectInto(sql string) (stmt, into string, ok bool) {
	if !selectPrefix.MatchString(sql) {
		return "", "", false
	}
	at := sqlscan.Keyword(sql, 0, "into")
	if at < 0 {
		return "", "", false
	}
	end, ok := userVarList(sql, at+len("into"))
	if !ok {
		return "", "", false
	}
	rest := strings.TrimSpace(strings.TrimRight(strings.TrimSpace(sql[end:]), ";"))
	if rest != "" && !startsWithWord(rest, "from") {
		return "", "", false
	}
	stmt = strings.TrimSpace(sql[:at])
	if rest != "" {
		stmt += " " + rest
	}
	return stmt, strings.TrimSpace(sql[at:end]), true
}

// userVarList reads a comma-separated list of user variables (@name, @`name`, @'name',
// @"name") from i and returns where it ends.
func userVarList(sql string, i int) (int, bool) {
	for n := 0; ; n++ {
		for i < len(sql) && sqlscan.IsSpace(sql[i]) {
			i++
		}
		if i >= len(sql) || sql[i] != '@' || i+1 < len(sql) && sql[i+1] == '@' {
			return 0, false
		}
		i++
		switch {
		case i < len(sql) && (sql[i] == '`' || sql[i] == '\'' || sql[i] == '"'):
			j := sqlscan.SkipQuoted(sql, i)
			if j > len(sql) || sql[j-1] != sql[i] || j-i < 3 {
				return 0, false
			}
			i = j
		default:
			j := i
			for j < len(sql) && (sqlscan.IsIdentChar(sql[j]) || sql[j] == '.') {
				j++
			}
			if j == i {
				return 0, false
			}
			i = j
		}
		k := i
		for k < len(sql) && sqlscan.IsSpace(sql[k]) {
			k++
		}
		if k < len(sql) && sql[k] == ',' {
			i = k + 1
			continue
		}
		return i, true
	}
}

func startsWithWord(s, word string) bool {
	if len(s) < len(word) || !strings.EqualFold(s[:len(word)], word) {
		return false
	}
	return len(s) == len(word) || !sqlscan.IsIdentChar(s[len(word)])
}

// selectInto runs SELECT ... INTO @vars; ok is false when sql does not have that shape. The
// SELECT must read rows of one shard: the one where the session's user variables live (the
// default shard of its database, see userVariable).
func (s *Session) selectInto(ctx context.Context, snap *rules.Snapshot, sql string, w wire.PacketWriter) (ok bool, err error) {
	text, into, ok := splitSelectInto(sql)
	if !ok {
		return false, nil
	}
	st, err := s.parseOne(text)
	if err != nil {
		return true, err
	}
	sel, isSelect := st.(*ast.SelectStmt)
	if _, isUnion := st.(*ast.SetOprStmt); !isUnion && (!isSelect || sel.SelectIntoOpt != nil) {
		return true, syntaxError(errors.New("SELECT ... INTO takes one query and a list of user variables"))
	}
	pp, err := s.plan(snap, st, text, nil)
	if err != nil {
		return true, err
	}
	home, err := s.planner(snap).VariableShard(snap)
	if err != nil {
		return true, err
	}
	p, single := plan.RouteOf(pp)
	switch {
	case !single:
		return true, sqlerr.NotSupported("SELECT ... INTO @variable reading rows on several shards (user variables live on the database's default shard; select the values, then SET them)")
	case p.Shard != home:
		return true, sqlerr.NotSupported("SELECT ... INTO @variable reading rows on shard %s: user variables live on the database's default shard %s (select the values, then SET them)", p.Shard.Name, home.Name)
	case !p.Names.Empty():
		return true, sqlerr.NotSupported("SELECT ... INTO @variable from information_schema (the proxy translates its names in the rows it returns)")
	}
	s.sticky = true
	s.route = RouteSingle
	s.publish(sql)
	defer s.publish("")
	return true, s.withDeadline(ctx, snap, statementHint(st), func(ctx context.Context) error {
		return s.runRead(ctx, snap, p.Shard, p.SQL+" "+into, false, w)
	})
}

var showCreateRoutine = regexp.MustCompile(`(?is)^(\s*SHOW\s+CREATE\s+)(TRIGGER|FUNCTION|EVENT)(\s.*)$`)

// showCreate runs SHOW CREATE TRIGGER | FUNCTION | EVENT name (mariadb-dump sends them for
// every trigger, and with --routines and --events): planned as SHOW CREATE PROCEDURE name,
// which names the same kind of object in the same database, and sent with its word put back.
// ok is false when sql does not have that shape.
func (s *Session) showCreate(ctx context.Context, snap *rules.Snapshot, sql string, w wire.PacketWriter) (ok bool, err error) {
	m := showCreateRoutine.FindStringSubmatch(sql)
	if m == nil {
		return false, nil
	}
	text := "SHOW CREATE PROCEDURE" + m[3]
	st, err := s.parseOne(text)
	if err != nil {
		return true, err
	}
	if show, isShow := st.(*ast.ShowStmt); !isShow || show.Tp != ast.ShowCreateProcedure {
		return true, syntaxError(errors.New("SHOW CREATE " + strings.ToUpper(m[2]) + " takes a name"))
	}
	pp, err := s.plan(snap, st, text, nil)
	if err != nil {
		return true, err
	}
	p, single := plan.RouteOf(pp)
	if !single {
		return true, errShapeLost
	}
	loc := showCreateProcedure.FindStringIndex(p.SQL)
	if loc == nil {
		return true, errShapeLost
	}
	out := "SHOW CREATE " + strings.ToUpper(m[2]) + " " + p.SQL[loc[1]:]
	if !p.Names.Empty() {
		w = introspect.NewRows(w, p.Names, false)
	}
	s.route = RouteSingle
	s.publish(sql)
	defer s.publish("")
	return true, s.withDeadline(ctx, snap, statementHint(st), func(ctx context.Context) error {
		return s.runRead(ctx, snap, p.Shard, out, false, w)
	})
}

var showCreateProcedure = regexp.MustCompile(`(?is)^\s*SHOW\s+CREATE\s+PROCEDURE\s`)

var setvalCall = regexp.MustCompile(`(?is)^\s*((?:DO|SELECT)\s+SETVAL\s*\(\s*(?:` + "`[^`]+`" + `|\w+)(?:\s*\.\s*(?:` + "`[^`]+`" + `|\w+))?\s*,\s*-?\d+)\s*,\s*(?:0|1|TRUE|FALSE)\s*(?:,\s*\d+\s*)?\)\s*;?\s*$`)

// setval runs MariaDB's SETVAL(sequence, n, is_used [, round]) (mariadb-dump restores every
// sequence with DO SETVAL(`s`, n, 0)): the parser knows only SETVAL(sequence, n), which is
// planned; the extra arguments are integer literals. The client's text is sent only when
// the plan sends the two-argument form unchanged. ok is false when sql does not have that
// shape.
func (s *Session) setval(ctx context.Context, snap *rules.Snapshot, sql string, w wire.PacketWriter) (ok bool, err error) {
	m := setvalCall.FindStringSubmatch(sql)
	if m == nil {
		return false, nil
	}
	text := m[1] + ")"
	st, err := s.parseOne(text)
	if err != nil {
		return true, err
	}
	pp, err := s.plan(snap, st, text, nil)
	if err != nil {
		return true, err
	}
	p, single := plan.RouteOf(pp)
	if !single || p.SQL != text || !p.Names.Empty() {
		return true, sqlerr.NotSupported("SETVAL with more than two arguments in a statement the proxy must rewrite (qualified names): use SETVAL(sequence, n)")
	}
	s.route = RouteSingle
	s.publish(sql)
	defer s.publish("")
	return true, s.withDeadline(ctx, snap, statementHint(st), func(ctx context.Context) error {
		if err := s.checkWrite(ctx, p.Shard); err != nil {
			return err
		}
		return lostWrite(s.run(ctx, snap, p.Shard, strings.TrimRight(strings.TrimSpace(sql), ";"), false, w))
	})
}
