package router

import (
	"regexp"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// The privilege barrier (DESIGN.md invariant 7). The proxy's backend accounts are
// privileged; a client must not borrow their privileges, whatever path its SQL takes:
//
//   - every text a client sends (COM_QUERY, COM_STMT_PREPARE, each statement of a
//     multi-statement query) passes checkText before it is parsed;
//   - every parsed statement, and every statement nested in another one (the text of
//     PREPARE ... FROM, the statement of SET STATEMENT ... FOR, the expressions of a
//     RETURNING clause), is planned by Session.plan, whose first step is adminStatement and
//     whose analyzer refuses system schemas, other databases and LOAD_FILE;
//   - text the parser cannot read runs only when it is one of the shapes of unparsed.go
//     (each of which is taken apart and its parts planned as above); anything else is
//     refused. No statement reaches a backend by a deny-list of first words.

// checkText refuses what MariaDB would execute but the parser does not see: MariaDB's
// executable comments /*M! ... */ (and /*M!###### ... */), which the TiDB parser reads as
// plain comments. The search ignores quoting on purpose: which quotes delimit strings
// depends on sql_mode, and a string holding "/*M!" is rare enough to be refused too.
func checkText(sql string) error {
	if i := strings.Index(sql, "/*"); i < 0 {
		return nil
	}
	for rest := sql; ; { // without an upper-case copy: a statement can be megabytes
		i := strings.Index(rest, "/*")
		if i < 0 {
			return nil
		}
		rest = rest[i+2:]
		if len(rest) < 2 || rest[0] != 'M' && rest[0] != 'm' || rest[1] != '!' {
			continue
		}
		rest = rest[2:]
		if !strings.HasPrefix(rest, "999999") {
			return sqlerr.NotSupported("MariaDB executable comments (/*M! ... */) through the proxy: it cannot check what they run")
		}
		// /*M!999999 ... */ runs on MariaDB 99.99.99 and later only: a comment to every
		// server (mariadb-dump writes one as its first line, the sandbox marker).
	}
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

// checkSetVars refuses SET of global variables and of privileged session variables.
func checkSetVars(st *ast.SetStmt) error {
	for _, v := range st.Variables {
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
	if err := checkText(text); err != nil {
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
	s.describing = true
	p, err := s.plan(snap, st, text, nil)
	s.describing = false
	if err != nil {
		return nil, plan{}, err
	}
	if p.scatter != nil || p.branches != nil || p.dynamic || !p.names.empty() {
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
