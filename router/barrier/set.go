package barrier

import (
	"regexp"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/sqlscan"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// SetVars refuses SET of global variables and of privileged session variables, and
// client character sets the proxy's parser would read otherwise than the backend.
func SetVars(st *ast.SetStmt) error {
	for _, v := range st.Variables {
		if cs, ok := ClientCharset(v); ok && EscapeUnsafe(cs) {
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

// privilegedVar reports session variables that MariaDB lets only SUPER (or BINLOG ADMIN,
// REPLICATION SLAVE ADMIN) accounts set: through the proxy's account a client could hide
// its writes from the binary log and the replicas, or forge replication positions.
func privilegedVar(name string) bool {
	switch n := strings.ToLower(name); n {
	case "sql_log_bin", "sql_log_off", "binlog_format", "binlog_annotate_row_events", "binlog_row_image",
		"binlog_direct_non_transactional_updates", "gtid_domain_id", "gtid_seq_no", "server_id",
		"pseudo_thread_id", "pseudo_slave_mode", "skip_replication", "slave_skip_errors",
		"debug", "debug_dbug", "rand_seed1", "rand_seed2", "log_slow_filter", "log_slow_rate_limit",
		"log_disabled_statements":
		return true
	default:
		return strings.HasPrefix(n, "wsrep_")
	}
}

// EscapeUnsafe reports client character sets in which the byte of a backslash (0x5c) can
// be the second byte of a multi-byte character. Under them the backend reads '\xbf\' as a
// closed string where the proxy's parser (which reads bytes) sees an escaped quote, so text
// after it would run unchecked (the GBK injection). MySQL's documentation lists the same
// five. charset may be quoted (as a session holds it).
func EscapeUnsafe(charset string) bool {
	switch strings.ToLower(strings.Trim(charset, "'\"`")) {
	case "big5", "cp932", "gbk", "sjis", "gb18030":
		return true
	}
	return false
}

// ClientCharset returns the character set a SET assignment gives character_set_client,
// ok false when it sets none; an expression ("" then) is judged after it ran, by the value
// read back (Facts.Text).
func ClientCharset(v *ast.VariableAssignment) (string, bool) {
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

var setStatementPrefix = regexp.MustCompile(`(?is)^\s*SET\s+STATEMENT\s`)

// SplitSetStatement splits MariaDB's SET STATEMENT var = value [, ...] FOR statement at its
// FOR keyword: the first one outside quotes and parentheses, not qualified by a dot. ok is
// false when sql does not have that shape, and when a comment comes before that FOR (not a
// shape worth reading).
func SplitSetStatement(sql string) (assign, stmt string, ok bool) {
	loc := setStatementPrefix.FindStringIndex(sql)
	if loc == nil {
		return "", "", false
	}
	at := -1
	sqlscan.Scan(sql, loc[1], func(t sqlscan.Token) bool {
		switch {
		case t.Kind == sqlscan.Comment:
			return false
		case t.Kind == sqlscan.Word && t.Depth == 0 && strings.EqualFold(sql[t.Start:t.End], "for") && !sqlscan.Qualified(sql, t.Start):
			at = t.Start
			return false
		}
		return true
	})
	if at < 0 {
		return "", "", false
	}
	return strings.TrimSpace(sql[loc[1]:at]), strings.TrimSpace(sql[at+len("for"):]), true
}
