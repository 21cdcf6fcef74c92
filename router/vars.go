package router

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/mysql"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

const killTimeout = 5 * time.Second

// set runs a SET statement. System variables are applied on the backend connection the
// statement runs on (so the server validates them), then read back and remembered, so the
// session's state can be replayed on any other connection it uses later. User variables
// and one-shot transaction settings live only in the backend session: they pin it.
func (s *Session) set(ctx context.Context, snap *rules.Snapshot, st *ast.SetStmt, text string, more bool, w wire.PacketWriter) error {
	var names []string
	renamed, err := s.vars.setDeadline(st)
	if err != nil {
		return err
	}
	if renamed && len(st.Variables) == 0 {
		return s.writeOK(w, more) // only the proxy's own variables
	}
	for _, v := range st.Variables {
		switch {
		case v.IsGlobal || v.IsInstance:
			return sqlerr.NotSupported("SET GLOBAL through the proxy (set it on the backends)")
		case v.Name == ast.SetNames:
			names = append(names, "character_set_client", "character_set_connection", "character_set_results", "collation_connection")
		case v.Name == ast.SetCharset:
			names = append(names, "character_set_client", "character_set_results", "character_set_connection", "collation_connection")
		case v.Name == "tx_isolation_one_shot", v.Name == "tx_read_only_one_shot":
			s.sticky = true
		case !v.IsSystem:
			s.sticky = true
		default:
			name := strings.ToLower(v.Name)
			if alias, ok := planner.VarAliases[name]; ok {
				v.Name, name, renamed = alias, alias, true
			}
			names = append(names, name)
		}
	}
	if renamed {
		if text, err = planner.RestoreSQL(s.vars.restoreFlags, s.lists, st); err != nil {
			return err
		}
	}
	p, err := s.plan(snap, st, text, nil)
	if err != nil {
		return err
	}
	shard, _ := plan.First(p) // a Route: only a SELECT scatters, only a write is a MultiWrite
	c, err := s.acquire(ctx, snap, shard)
	if err != nil {
		return err
	}
	it := s.intr.watchOnDone(ctx, shard, c)
	err = engine.SendCommand(ctx, c, engine.ComQuery, []byte(text))
	var out engine.Outcome
	if err == nil {
		out, err = engine.Relay(ctx, c, w, more)
	}
	if err == nil && len(names) > 0 {
		err = s.vars.readBack(ctx, c, names)
	} else if err != nil && !c.State().Broken() && len(names) > 0 {
		c.State().MarkDirty() // a SET may fail half-applied: the pool resets this connection
	}
	it.Stop()
	return s.finish(shard, c, out, err)
}

// sessionVars is what a session's statements are read and replayed under: the system
// variables it set that differ from a fresh backend connection's (replayed on every
// connection it uses), the parser and restore flags that follow its sql_mode, and the
// deadline its SET max_execution_time / max_statement_time chose (deadline.go). The zero
// value is not usable: newSessionVars. Owned by one Session; not safe for concurrent use.
type sessionVars struct {
	baseline     map[string]string // the Router's: what a fresh backend connection has
	values       map[string]string // those that differ from baseline; key "" is a fingerprint; nil for none
	parser       *parser.Parser    // reads the session's statements under its sql_mode
	restoreFlags format.RestoreFlags
	execTime     time.Duration // SET max_execution_time / max_statement_time (0: no limit)
	execTimeSet  bool          // the session set one: it overrides the configured defaults
}

// newSessionVars returns the variables of a fresh login against baseline.
func newSessionVars(baseline map[string]string) sessionVars {
	return sessionVars{baseline: baseline, parser: parser.New(), restoreFlags: planner.DefaultRestoreFlags}
}

// get returns the SQL literal of variable name as the session set it, "" for the baseline.
func (v *sessionVars) get(name string) string { return v.values[name] }

// backslashEscapes reports whether string literals of the session's SQL escape with
// backslashes (no NO_BACKSLASH_ESCAPES in its sql_mode).
func (v *sessionVars) backslashEscapes() bool {
	return v.restoreFlags&format.RestoreStringEscapeBackslash != 0
}

// reset goes back to a fresh login's variables; the character set and collation stay.
func (v *sessionVars) reset() {
	v.execTime, v.execTimeSet = 0, false
	v.setSQLMode(nil)
	kept := map[string]string{}
	for k, val := range v.values {
		if strings.HasPrefix(k, "character_set_") || k == "collation_connection" {
			kept[k] = val
		}
	}
	v.replace(kept)
}

// readBack reads the current values of names on c and makes them the session's.
func (v *sessionVars) readBack(ctx context.Context, c Conn, names []string) error {
	names = slices.Compact(slices.Sorted(slices.Values(names)))
	sel := make([]string, len(names))
	for i, n := range names {
		sel[i] = "@@session." + n
	}
	row, err := engine.QueryRow(ctx, c, "SELECT "+strings.Join(sel, ", "))
	if err != nil {
		return err
	}
	if len(row) != len(names) {
		return sqlerr.New(sqlerr.ErUnknownError, "reading back session variables: got %d values for %d names", len(row), len(names))
	}
	vars := maps.Clone(v.values)
	if vars == nil {
		vars = map[string]string{}
	}
	for i, n := range names {
		lit := "NULL"
		if row[i] != nil {
			lit = literal(*row[i])
		}
		if v.baseline[n] == lit {
			delete(vars, n)
		} else {
			vars[n] = lit
		}
	}
	v.replace(vars)
	// This connection now holds exactly the session's state.
	c.State().SetVars(v.values)
	if slices.Contains(names, "sql_mode") {
		v.setSQLMode(row[slices.Index(names, "sql_mode")])
	}
	return nil
}

// setSQLMode makes the parser read statements as the backend will under the session's
// sql_mode (ANSI_QUOTES, PIPES_AS_CONCAT, NO_BACKSLASH_ESCAPES, ...).
func (v *sessionVars) setSQLMode(val *string) {
	mode := mysql.SQLMode(0)
	if val != nil {
		// Name by name: one the parser does not know (MariaDB's EMPTY_STRING_IS_NULL,
		// SIMULTANEOUS_ASSIGNMENT, ...) must not cost the ones it does (ANSI_QUOTES), or
		// the parser would read quotes otherwise than the backend (see router/barrier).
		for _, name := range strings.Split(*val, ",") {
			if m, err := mysql.GetSQLMode(strings.ToUpper(strings.TrimSpace(name))); err == nil {
				mode |= m
			}
		}
	}
	v.parser.SetSQLMode(mode)
	v.restoreFlags = planner.DefaultRestoreFlags
	if mode.HasNoBackslashEscapesMode() {
		v.restoreFlags &^= format.RestoreStringEscapeBackslash
	}
}

var numeric = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// literal turns a value read back from @@session.x into SQL that sets it again.
func literal(v string) string {
	if numeric.MatchString(v) {
		return v
	}
	return wire.QuoteString(v)
}

// replace replaces the session's variables and recomputes their fingerprint (key "").
func (v *sessionVars) replace(vars map[string]string) {
	delete(vars, "")
	for k, val := range vars {
		if v.baseline[k] == val {
			delete(vars, k)
		}
	}
	if len(vars) == 0 {
		v.values = nil
		return
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(vars[k])
		b.WriteByte(';')
	}
	vars[""] = b.String()
	v.values = vars
}

// prepareConn brings a pool connection to the session's database (phys: its physical
// name on c's shard, "" for none) and variables. Nothing is sent when it already matches,
// which is the common case.
func (v *sessionVars) prepareConn(ctx context.Context, c Conn, phys string) error {
	if phys != "" && c.State().DB() != phys {
		if err := initDB(ctx, c, phys); err != nil {
			return err
		}
	}
	set := v.assignments(c.State().Vars())
	if len(set) > 0 {
		it := engine.Watch(ctx, c, nil)
		_, err := c.Exec(ctx, "SET SESSION "+strings.Join(set, ", "))
		it.Stop()
		if err != nil {
			c.State().MarkDirty()
			return err
		}
	}
	c.State().SetVars(v.values)
	return nil
}

// assignments returns what brings a connection holding cur to the session's variables, in
// SET NAMES order: a character set assignment resets the matching collation, so
// collations come after every character set, reset ones included. None when the
// fingerprints match.
func (v *sessionVars) assignments(cur map[string]string) []string {
	if cur[""] == v.values[""] {
		return nil
	}
	want := map[string]string{}
	for k, val := range v.values {
		if k != "" && cur[k] != val {
			want[k] = val
		}
	}
	for k := range cur {
		if _, ok := v.values[k]; !ok && k != "" {
			def := v.baseline[k]
			if def == "" {
				def = "DEFAULT"
			}
			want[k] = def
		}
	}
	var set []string
	for _, k := range slices.SortedFunc(maps.Keys(want), varOrder) {
		set = append(set, k+" = "+want[k])
	}
	return set
}

// sessionDB is the physical database on shard that holds the session's current database
// db, "" when it has none (or it is gone from snap).
func sessionDB(snap *rules.Snapshot, db string, shard *rules.Shard) string {
	if db == "" {
		return ""
	}
	if d, ok := snap.Database(db); ok {
		return physicalDB(d, shard)
	}
	return ""
}

// varOrder puts character sets first and collation_connection after them, as SET NAMES
// would, since setting a character set resets the matching collation.
func varOrder(a, b string) int {
	rank := func(k string) int {
		switch {
		case strings.HasPrefix(k, "character_set_"):
			return 0
		case strings.HasPrefix(k, "collation_"):
			return 1
		}
		return 2
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra - rb
	}
	return strings.Compare(a, b)
}

func initDB(ctx context.Context, c Conn, db string) error {
	it := engine.Watch(ctx, c, nil)
	defer it.Stop()
	if err := engine.SendCommand(ctx, c, engine.ComInitDB, []byte(db)); err != nil {
		return err
	}
	if _, err := engine.Relay(ctx, c, engine.Discard{}, false); err != nil {
		return err
	}
	c.State().SetDB(db)
	return nil
}

// physicalDB is the database that holds db's tables on shard.
func physicalDB(_ *rules.Database, shard *rules.Shard) string {
	return shard.Database
}
