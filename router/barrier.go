package router

import (
	"regexp"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// The privilege barrier (docs/architecture.md, invariant 7). The proxy's backend accounts are
// privileged; a client must not borrow their privileges, whatever path its SQL takes:
//
//   - every text a client sends (COM_QUERY, COM_STMT_PREPARE, each statement of a
//     multi-statement query) has MariaDB's executable comments resolved
//     (readableText) before it is parsed, so the parser reads what the backend runs;
//   - every parsed statement, and every statement nested in another one (the text of
//     PREPARE ... FROM, the statement of SET STATEMENT ... FOR, the expressions of a
//     RETURNING clause), is planned by Session.plan, whose first step is adminStatement and
//     whose analyzer refuses system schemas, other databases and LOAD_FILE;
//   - text the parser cannot read runs only when it is one of the shapes of unparsed.go
//     (each of which is taken apart and its parts planned as above); anything else is
//     refused. No statement reaches a backend by a deny-list of first words.

// announcedVersion is the MariaDB version the proxy resolves executable comments as
// (MYSQL_VERSION_ID of the 10.11.0 it announces).
const announcedVersion = 101100

// readableText checks that the backend reads sql as the proxy's parser does, and returns it
// with MariaDB's executable comments resolved, as a MariaDB 10.11.0 would read them: /*M! text */ and /*M!###### text */ with a version up to
// 10.11.0 become text, those of later versions become a space. The TiDB parser reads them
// as plain comments, so without this the backend would run what the barrier never saw;
// with it, what is parsed is what is sent. Quoting is judged with backslash escapes and
// single- and double-quoted strings; under sql_modes that read quotes otherwise
// (ANSI_QUOTES, NO_BACKSLASH_ESCAPES), and whenever "/*M!" is left (in a string, say),
// the text is refused.
//
// Under ANSI_QUOTES a backslash ends a double-quoted identifier for MariaDB ("a\" is the
// name a\) but escapes the quote for the parser, which would then read the rest of the
// statement as part of the name: text holding \" is refused there.
//
// Under an escape-unsafe client character set (see escapeUnsafe) that a SET from an
// expression gave the session, only ASCII text passes: no byte of it can start a
// multi-byte character, so the backend reads it as the parser does.
func (s *Session) readableText(sql string) (string, error) {
	if escapeUnsafe(s.vars.get("character_set_client")) && !isASCII(sql) {
		return "", sqlerr.NotSupported("text beyond ASCII under the client character set %s: in it a backslash can end a multi-byte character, so the backend would read string literals otherwise than the proxy", s.vars.get("character_set_client"))
	}
	mode := strings.ToUpper(s.vars.get("sql_mode"))
	if strings.Contains(mode, "ANSI") && strings.Contains(sql, `\"`) {
		return "", sqlerr.NotSupported(`a backslash before a double quote under sql_mode ANSI_QUOTES: MariaDB ends the quoted name there, the proxy's parser does not`)
	}
	if !strings.Contains(sql, "/*") || !hasMariaDBComment(sql) {
		return sql, nil
	}
	refuse := sqlerr.NotSupported("MariaDB executable comments (/*M! ... */) here: the proxy could not tell what they run")
	if strings.Contains(mode, "ANSI") || strings.Contains(mode, "NO_BACKSLASH_ESCAPES") {
		return "", refuse
	}
	var b strings.Builder
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			j := skipQuoted(sql, i)
			b.WriteString(sql[i:j])
			i = j
			continue
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				b.WriteString(sql[i:])
				i = len(sql)
				continue
			}
			body := sql[i+2 : i+2+end]
			next := i + 2 + end + 2
			if len(body) < 2 || (body[0] != 'M' && body[0] != 'm') || body[1] != '!' {
				b.WriteString(sql[i:next])
				i = next
				continue
			}
			text, version := body[2:], 0
			for k := 0; k < 6 && len(text) > 0 && text[0] >= '0' && text[0] <= '9'; k++ {
				version = version*10 + int(text[0]-'0')
				text = text[1:]
			}
			b.WriteByte(' ')
			if version <= announcedVersion {
				b.WriteString(text)
				b.WriteByte(' ')
			}
			i = next
			continue
		}
		b.WriteByte(c)
		i++
	}
	out := b.String()
	if hasMariaDBComment(out) {
		return "", refuse
	}
	return out, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func hasMariaDBComment(sql string) bool {
	return strings.Contains(sql, "/*M!") || strings.Contains(sql, "/*m!")
}

// privilegedVar reports session variables that MariaDB lets only SUPER (or BINLOG ADMIN,
// REPLICATION SLAVE ADMIN) accounts set: through the proxy's account a client could hide
// its writes from the binary log and the replicas, or forge replication positions.
func privilegedVar(name string) bool {
	switch n := strings.ToLower(name); n {
	case "sql_log_bin", "sql_log_off", "binlog_format", "binlog_annotate_row_events", "binlog_row_image",
		"binlog_direct_non_transactional_updates", "gtid_domain_id", "gtid_seq_no", "server_id",
		"pseudo_thread_id", "pseudo_slave_mode", "skip_replication", "slave_skip_errors",
		"debug", "debug_dbug", "rand_seed1", "rand_seed2", "log_slow_filter", "log_slow_rate_limit":
		return true
	default:
		return strings.HasPrefix(n, "wsrep_")
	}
}

// checkGrammar refuses statements while the session's sql_mode has MariaDB read another
// grammar than the proxy's parser (ORACLE: MariaDB's PL/SQL dialect); only SET statements
// pass, so that the session can set sql_mode back. stmts and parseErr are what parsing the
// text gave.
func (s *Session) checkGrammar(stmts []ast.StmtNode, parseErr error) error {
	if !strings.Contains(strings.ToUpper(s.vars.get("sql_mode")), "ORACLE") {
		return nil
	}
	refuse := sqlerr.NotSupported("statements under sql_mode ORACLE through the proxy: MariaDB reads another grammar than the proxy; SET sql_mode back first")
	if parseErr != nil || len(stmts) == 0 {
		return refuse
	}
	for _, st := range stmts {
		if _, ok := st.(*ast.SetStmt); !ok {
			return refuse
		}
	}
	return nil
}

// escapeUnsafe reports client character sets in which the byte of a backslash (0x5c) can
// be the second byte of a multi-byte character. Under them the backend reads '\xbf\' as a
// closed string where the proxy's parser (which reads bytes) sees an escaped quote, so text
// after it would run unchecked (the GBK injection). MySQL's documentation lists the same
// five.
func escapeUnsafe(charset string) bool {
	switch strings.ToLower(strings.Trim(charset, "'\"`")) {
	case "big5", "cp932", "gbk", "sjis", "gb18030":
		return true
	}
	return false
}

// clientCharset returns the character set a SET assignment gives character_set_client,
// ok false when it sets none; an expression ("" then) is judged after it ran, by the value
// read back (readableText).
func clientCharset(v *ast.VariableAssignment) (string, bool) {
	if v.Name != ast.SetNames && v.Name != ast.SetCharset && !strings.EqualFold(v.Name, "character_set_client") {
		return "", false
	}
	switch e := v.Value.(type) {
	case nil, *ast.DefaultExpr:
		return "", true
	case ast.ValueExpr:
		return e.GetString(), true
	case *ast.ColumnNameExpr:
		return e.Name.Name.O, true
	}
	return "", true
}

// checkSetVars refuses SET of global variables and of privileged session variables, and
// client character sets the proxy's parser would read otherwise than the backend.
func checkSetVars(st *ast.SetStmt) error {
	for _, v := range st.Variables {
		if cs, ok := clientCharset(v); ok && escapeUnsafe(cs) {
			return sqlerr.NotSupported("the client character set %s through the proxy: in it a backslash can end a multi-byte character, so the backend would read string literals otherwise than the proxy", cs)
		}
		switch {
		case v.IsGlobal || v.IsInstance:
			return sqlerr.New(sqlerr.ErSpecificAccessDenied,
				"Access denied; you need (at least one of) the SUPER privilege(s) for this operation (SET GLOBAL: set it on the backends)")
		case v.IsSystem && privilegedVar(v.Name):
			return sqlerr.New(sqlerr.ErSpecificAccessDenied,
				"Access denied; you need (at least one of) the SUPER privilege(s) for this operation (SET %s through shardproxy)", strings.ToLower(v.Name))
		}
	}
	return nil
}

// nested plans a statement nested in another one (PREPARE ... FROM 'text', SET STATEMENT
// ... FOR text): parsed and planned exactly as if the client had sent text alone. what
// names the outer statement for messages. The nested statement must be a data statement
// that runs on one shard as one statement: the outer one carries it there unchanged.
func (s *Session) nested(snap *rules.Snapshot, text, what string) (ast.StmtNode, plan, error) {
	text, err := s.readableText(text)
	if err != nil {
		return nil, plan{}, err
	}
	st, err := s.parseOne(text)
	if err != nil {
		return nil, plan{}, err
	}
	switch n := st.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt, *ast.InsertStmt, *ast.UpdateStmt, *ast.DeleteStmt, *ast.DoStmt, *ast.CallStmt:
	case *ast.ShowStmt:
		switch n.Tp {
		case ast.ShowDatabases, ast.ShowProcessList, ast.ShowWarnings, ast.ShowErrors, ast.ShowTables:
			// answered by the proxy, which a backend-side statement would bypass
			return nil, plan{}, sqlerr.NotSupported("%s of a SHOW statement the proxy answers itself", what)
		}
	default:
		if err := adminStatement(st); err != nil {
			return nil, plan{}, err
		}
		return nil, plan{}, sqlerr.New(sqlerr.ErUnsupportedPS, "This command is not supported in the prepared statement protocol yet (%s of this statement through shardproxy)", what)
	}
	p, err := s.describe(snap, st, text)
	if err != nil {
		return nil, plan{}, err
	}
	if p.scatter != nil || p.branches != nil || p.dynamic || !p.names.Empty() {
		return nil, plan{}, sqlerr.NotSupported("%s of a statement the proxy must route or rewrite at each execution (sharded or broadcast tables, session functions, information_schema); use the binary protocol's prepared statements", what)
	}
	return st, p, nil
}

var setStatementPrefix = regexp.MustCompile(`(?is)^\s*SET\s+STATEMENT\s`)

// splitSetStatement splits MariaDB's SET STATEMENT var = value [, ...] FOR statement at its
// FOR keyword: the first one outside quotes, comments and parentheses. ok is false when sql
// does not have that shape.
func splitSetStatement(sql string) (assign, stmt string, ok bool) {
	loc := setStatementPrefix.FindStringIndex(sql)
	if loc == nil {
		return "", "", false
	}
	depth := 0
	for i := loc[1]; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(sql, i)
			continue
		case c == '#' || c == '-' && strings.HasPrefix(sql[i:], "--") && (i+2 == len(sql) || isSpace(sql[i+2])):
			return "", "", false // comments inside the assignments: not a shape worth reading
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			return "", "", false
		case c == '(':
			depth++
		case c == ')':
			depth--
		case isIdentChar(c):
			j := i
			for j < len(sql) && isIdentChar(sql[j]) {
				j++
			}
			if depth == 0 && strings.EqualFold(sql[i:j], "for") && !qualified(sql, i) {
				return strings.TrimSpace(sql[loc[1]:i]), strings.TrimSpace(sql[j:]), true
			}
			i = j
			continue
		}
		i++
	}
	return "", "", false
}
