package barrier

import (
	"errors"
	"testing"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/sqlerr"
)

// TestSplitSetStatement: SET STATEMENT ... FOR is cut at its first FOR outside quotes and
// parentheses, not qualified; a comment before it leaves the text unread.
func TestSplitSetStatement(t *testing.T) {
	for _, tc := range []struct {
		sql, assign, stmt string
		ok                bool
	}{
		{"SET STATEMENT max_statement_time=1 FOR SELECT 1", "max_statement_time=1", "SELECT 1", true},
		{"  set statement a='for', b=(1) for\nselect 2", "a='for', b=(1)", "select 2", true},
		{"SET STATEMENT a=`for` FOR SELECT 1", "a=`for`", "SELECT 1", true},
		{"SET STATEMENT a=1 /* FOR */ FOR SELECT 1", "", "", false},
		{"SET STATEMENT a=1", "", "", false},
		{"SET a=1", "", "", false},
		{"SET STATEMENT t.for=1 FOR SELECT 1", "t.for=1", "SELECT 1", true},
	} {
		a, st, ok := SplitSetStatement(tc.sql)
		if a != tc.assign || st != tc.stmt || ok != tc.ok {
			t.Errorf("SplitSetStatement(%q) = %q, %q, %v; want %q, %q, %v", tc.sql, a, st, ok, tc.assign, tc.stmt, tc.ok)
		}
	}
}

// TestResolveComments: MariaDB's executable comments become the text a MariaDB 10.11.0
// runs; where quoting cannot be judged, they are refused.
func TestResolveComments(t *testing.T) {
	for _, tc := range []struct {
		mode, sql, want string
		ok              bool
	}{
		{"", "SELECT 1", "SELECT 1", true},
		{"", "SELECT 1 /* plain */", "SELECT 1 /* plain */", true},
		{"", "SELECT 1 /*!40101 , 2 */", "SELECT 1 /*!40101 , 2 */", true},
		{"", "SELECT 1 /*M!, 2 */", "SELECT 1  , 2  ", true},
		{"", "/*M!100616 SET @a = 1 */", "  SET @a = 1  ", true},
		{"", "/*M!101100 SET @a = 1 */", "  SET @a = 1  ", true},
		{"", "/*M!101101 SET @a = 1 */", " ", true},
		{"", "/*M!999999 enable the sandbox mode */ \n/*!40101 SET @x=1 */", "  \n/*!40101 SET @x=1 */", true},
		{"", "SELECT '/*M! x */'", "", false},
		{"", "SELECT 'it''s', \"a\\\"\" /*M! , 2 */", "SELECT 'it''s', \"a\\\"\"   , 2  ", true},
		{"", "SELECT 1 /*M! unterminated", "", false},
		{"'ANSI_QUOTES'", "SELECT 1 /*M!, 2 */", "", false},
		{"'NO_BACKSLASH_ESCAPES'", "SELECT 1 /*M!, 2 */", "", false},
		{"'ANSI_QUOTES'", "SELECT 1", "SELECT 1", true},
	} {
		got, err := Facts{SQLMode: tc.mode}.Text(tc.sql)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("mode %s: Text(%q) = %q, %v; want %q, ok %v", tc.mode, tc.sql, got, err, tc.want, tc.ok)
		}
	}
}

func parseOne(t *testing.T, sql string) ast.StmtNode {
	t.Helper()
	stmts, _, err := parser.New().Parse(sql, "", "")
	if err != nil || len(stmts) != 1 {
		t.Fatalf("parse %q: %v (%d statements)", sql, err, len(stmts))
	}
	return stmts[0]
}

// TestStatement pins the pass over one parsed statement by itself, without a session:
// administration, server files and table options beyond the table's database are 1227,
// escape-unsafe client character sets 1235, data statements nil (what they name is the
// analyzer's to judge).
func TestStatement(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		code uint16 // 0: nil
	}{
		{"CREATE USER evil", sqlerr.ErSpecificAccessDenied},
		{"GRANT ALL ON *.* TO app", sqlerr.ErSpecificAccessDenied},
		{"SET PASSWORD = 'x'", sqlerr.ErSpecificAccessDenied},
		{"FLUSH PRIVILEGES", sqlerr.ErSpecificAccessDenied},
		{"SHUTDOWN", sqlerr.ErSpecificAccessDenied},
		{"LOAD DATA INFILE '/etc/passwd' INTO TABLE t", sqlerr.ErSpecificAccessDenied},
		{"LOAD DATA LOCAL INFILE 'x' INTO TABLE t", 0},
		{"SELECT 1 INTO OUTFILE '/tmp/x'", sqlerr.ErSpecificAccessDenied},
		{"SELECT 1", 0},
		{"SET GLOBAL read_only = 1", sqlerr.ErSpecificAccessDenied},
		{"SET @@session.sql_log_bin = 0", sqlerr.ErSpecificAccessDenied},
		{"SET wsrep_on = 0", sqlerr.ErSpecificAccessDenied},
		{"SET SESSION log_disabled_statements = 'sp'", sqlerr.ErSpecificAccessDenied}, // MariaDB 10.11 wants SUPER
		{"EXPLAIN FOR CONNECTION 7", sqlerr.ErSpecificAccessDenied},
		{"EXPLAIN SELECT 1", 0},
		{"SET NAMES gbk", sqlerr.ErNotSupportedYet},
		{"SET character_set_client = big5", sqlerr.ErNotSupportedYet},
		{"SET NAMES utf8mb4", 0},
		{"SET @sql_log_bin = 0", 0}, // a user variable
		{"CREATE TABLE x (a INT) ENGINE=FEDERATED", sqlerr.ErSpecificAccessDenied},
		{"CREATE TABLE x (a INT) ENGINE=Aria", 0},
		{"CREATE TABLE x (a INT) INDEX DIRECTORY = '/tmp'", sqlerr.ErSpecificAccessDenied},
		{"ALTER TABLE x CONNECTION = 'mysql://u@h/d/t'", sqlerr.ErSpecificAccessDenied},
		{"CREATE SEQUENCE s ENGINE=CONNECT", sqlerr.ErSpecificAccessDenied},
		{"SHOW PROCESSLIST", sqlerr.ErSpecificAccessDenied},
		{"SHOW OPEN TABLES FROM blog", 0},
		{"SHOW OPEN TABLES", sqlerr.ErSpecificAccessDenied},
		{"SHOW TABLES", 0},
		{"SELECT user FROM mysql.user", 0},
	} {
		err := Statement(parseOne(t, tc.sql))
		if got := code(err); got != tc.code {
			t.Errorf("Statement(%s) = %v, want code %d", tc.sql, err, tc.code)
		}
	}
}

// TestNames pins what the analyzer's walk asks of every name and function it meets.
func TestNames(t *testing.T) {
	for _, tc := range []struct {
		what string
		err  error
		code uint16
	}{
		{"schema mysql", Schema("app", "mysql"), sqlerr.ErDBAccessDenied},
		{"schema MySQL", Schema("app", "MySQL"), sqlerr.ErDBAccessDenied},
		{"schema performance_schema", Schema("app", "performance_schema"), sqlerr.ErDBAccessDenied},
		{"schema sys", Schema("app", "sys"), sqlerr.ErDBAccessDenied},
		{"schema information_schema", Schema("app", "information_schema"), 0},
		{"schema blog", Schema("app", "blog"), 0},
		{"table information_schema.PROCESSLIST", Table("INFORMATION_SCHEMA", "PROCESSLIST"), sqlerr.ErSpecificAccessDenied},
		{"table information_schema.innodb_trx", Table("information_schema", "innodb_trx"), sqlerr.ErSpecificAccessDenied},
		{"table information_schema.TABLES", Table("information_schema", "TABLES"), 0},
		{"table blog.processlist", Table("blog", "processlist"), 0},
		{"function LOAD_FILE", Function("LOAD_FILE"), sqlerr.ErSpecificAccessDenied},
		{"function load_file", Function("load_file"), sqlerr.ErSpecificAccessDenied},
		{"function concat", Function("concat"), 0},
	} {
		if got := code(tc.err); got != tc.code {
			t.Errorf("%s: %v, want code %d", tc.what, tc.err, tc.code)
		}
	}
	if err := Schema("app", "mysql"); err.Error() != "ERROR 1044 (42000): Access denied for user 'app' to database 'mysql'" {
		t.Errorf("Schema message: %v", err)
	}
}

// TestUnparsed pins the answer to text no allowed shape takes: 1227 for what looks like
// administration or reads the server's schemas, nil (the syntax error) otherwise.
func TestUnparsed(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		code uint16
	}{
		{"CREATE OR REPLACE USER evil", sqlerr.ErSpecificAccessDenied},
		{"create or replace role r", sqlerr.ErSpecificAccessDenied},
		{"INSTALL SONAME 'ha_connect'", sqlerr.ErSpecificAccessDenied},
		{"START SLAVE", sqlerr.ErSpecificAccessDenied},
		{"START TRANSACTION WITH CONSISTENT SNAPSHOT x", 0},
		{"LOAD XML INFILE '/etc/passwd' INTO TABLE t", sqlerr.ErSpecificAccessDenied},
		{"LOAD XML LOCAL INFILE 'x' INTO TABLE t", 0},
		{"SELECT load_file('/etc/passwd') LIMIT ROWS EXAMINED 1", sqlerr.ErSpecificAccessDenied},
		{"SELECT * FROM INFORMATION_SCHEMA.TABLES LIMIT ROWS EXAMINED 1", sqlerr.ErSpecificAccessDenied},
		{"HANDLER t OPEN", 0},
		{"", 0},
	} {
		if got := code(Unparsed(tc.sql)); got != tc.code {
			t.Errorf("Unparsed(%q): code %d, want %d", tc.sql, got, tc.code)
		}
	}
}

// TestFactsGrammarAndText: the session facts decide; the zero Facts are a fresh session's.
func TestFactsGrammarAndText(t *testing.T) {
	set, sel := parseOne(t, "SET sql_mode = DEFAULT"), parseOne(t, "SELECT 1")
	oracle := Facts{SQLMode: "'PIPES_AS_CONCAT,ORACLE'"}
	for _, tc := range []struct {
		f     Facts
		stmts []ast.StmtNode
		err   error
		code  uint16
	}{
		{Facts{}, []ast.StmtNode{sel}, nil, 0},
		{oracle, []ast.StmtNode{set}, nil, 0},
		{oracle, []ast.StmtNode{set, sel}, nil, sqlerr.ErNotSupportedYet},
		{oracle, nil, nil, sqlerr.ErNotSupportedYet},
		{oracle, nil, errors.New("syntax"), sqlerr.ErNotSupportedYet},
	} {
		if got := code(tc.f.Grammar(tc.stmts, tc.err)); got != tc.code {
			t.Errorf("%+v Grammar(%d statements, %v): code %d, want %d", tc.f, len(tc.stmts), tc.err, got, tc.code)
		}
	}
	for _, tc := range []struct {
		f    Facts
		sql  string
		code uint16
	}{
		{Facts{CharsetClient: "'gbk'"}, "SELECT 'é'", sqlerr.ErNotSupportedYet},
		{Facts{CharsetClient: "'gbk'"}, "SELECT 'e'", 0},
		{Facts{CharsetClient: "'utf8mb4'"}, "SELECT 'é'", 0},
		{Facts{SQLMode: "'ANSI_QUOTES'"}, `SELECT "a\"`, sqlerr.ErNotSupportedYet},
		{Facts{}, `SELECT "a\""`, 0},
	} {
		if _, err := tc.f.Text(tc.sql); code(err) != tc.code {
			t.Errorf("%+v Text(%q) = %v, want code %d", tc.f, tc.sql, err, tc.code)
		}
	}
}

func code(err error) uint16 {
	if e, ok := sqlerr.As(err); ok {
		return e.Code
	}
	if err != nil {
		return 1
	}
	return 0
}

// BenchmarkFactsText is the pass every client text takes before it is parsed: plain text
// (the common case: two substring searches) and text with an executable comment to resolve.
func BenchmarkFactsText(b *testing.B) {
	for _, bc := range []struct{ name, sql string }{
		{"plain", "SELECT id, name FROM users WHERE id = 42 AND status = 'active' /* app:users */"},
		{"comment", "SELECT id, name FROM users WHERE id = 42 /*M!100616 AND status = 'active' */"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var f Facts
			for b.Loop() {
				if _, err := f.Text(bc.sql); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
