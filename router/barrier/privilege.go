package barrier

import (
	"cmp"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/sqlerr"
)

// Statements that administer the server or reach beyond the client's logical databases are
// refused before they are planned.

// Statement returns an access error (1227) for a statement that administers the backend
// server (accounts, grants, server state, server-side files, replication), sets what only
// privileged accounts may set (SetVars), or gives a table options that reach beyond its
// database; nil for any other. It reads st only, not the statements nested in it: callers
// pass each (a stored program's body is walked node by node).
func Statement(st ast.StmtNode) error {
	what := ""
	switch n := st.(type) {
	case *ast.CreateUserStmt, *ast.AlterUserStmt, *ast.DropUserStmt, *ast.RenameUserStmt,
		*ast.GrantStmt, *ast.GrantRoleStmt, *ast.GrantProxyStmt, *ast.RevokeStmt, *ast.RevokeRoleStmt,
		*ast.SetPwdStmt, *ast.SetRoleStmt, *ast.SetDefaultRoleStmt:
		what = "CREATE USER or GRANT OPTION"
	case *ast.FlushStmt, *ast.ShutdownStmt, *ast.RestartStmt, *ast.AlterInstanceStmt, *ast.BinlogStmt,
		*ast.AdminStmt, *ast.SetConfigStmt, *ast.BRIEStmt:
		what = "RELOAD, SHUTDOWN or SUPER"
	case *ast.ExplainForStmt:
		// EXPLAIN FOR CONNECTION n (SHOW EXPLAIN FOR n): every client's backend sessions
		// run as the proxy's account, which MariaDB lets read its own sessions' plans.
		what = "PROCESS"
	case *ast.LoadDataStmt:
		if n.FileLocRef != ast.FileLocClient {
			what = "FILE"
		}
	case *ast.SelectStmt:
		if n.SelectIntoOpt != nil && n.SelectIntoOpt.Tp != ast.SelectIntoVars {
			what = "FILE"
		}
	case *ast.SetStmt:
		return SetVars(n)
	case *ast.CreateTableStmt:
		what = tableOptions(n.Options)
		if n.Partition != nil {
			for _, d := range n.Partition.Definitions {
				what = cmp.Or(what, tableOptions(d.Options))
			}
		}
	case *ast.CreateSequenceStmt: // a sequence is a table: ENGINE=, CONNECTION= ... apply
		what = tableOptions(n.TblOptions)
	case *ast.AlterTableStmt:
		for _, spec := range n.Specs {
			what = cmp.Or(what, tableOptions(spec.Options))
		}
	case *ast.ShowStmt:
		switch n.Tp {
		case ast.ShowProcessList:
			what = "PROCESS" // it would list every backend session; the proxy's own list comes with KILL
		case ast.ShowGrants, ast.ShowCreateUser:
			what = "SELECT on mysql.*" // they would show the backend account, password hash included
		case ast.ShowMasterStatus, ast.ShowBinlogStatus, ast.ShowReplicaStatus:
			what = "REPLICATION CLIENT, BINLOG MONITOR or SUPER"
		case ast.ShowOpenTables:
			if n.DBName == "" {
				what = "PROCESS" // it would name the open tables of every database of the server
			}
		}
	}
	if what == "" {
		return nil
	}
	return sqlerr.New(sqlerr.ErSpecificAccessDenied,
		"Access denied; you need (at least one of) the %s privilege(s) for this operation (through shardproxy, administer the backends directly)", what)
}

// Unparsed chooses the answer to text the parser did not read and no allowed shape takes
// (the router's unparsed.go): 1227 when it looks like administration or reads
// information_schema, so that the client learns why; nil otherwise, when the caller answers
// with the parser's syntax error. It decides nothing: such text is refused either way.
func Unparsed(sql string) error {
	f := strings.Fields(strings.ToUpper(sql))
	if len(f) == 0 {
		return nil
	}
	if len(f) > 3 && f[0] == "CREATE" && f[1] == "OR" && f[2] == "REPLACE" {
		f = append(f[:1:1], f[3:]...)
	}
	first, second := f[0], ""
	if len(f) > 1 {
		second = f[1]
	}
	switch {
	case first == "GRANT", first == "REVOKE", first == "FLUSH", first == "SHUTDOWN", first == "INSTALL",
		first == "UNINSTALL", first == "PURGE", first == "RESET", first == "CHANGE", first == "KILL",
		first == "BINLOG", first == "STOP", first == "START" && second != "TRANSACTION",
		(first == "CREATE" || first == "DROP" || first == "ALTER" || first == "RENAME") &&
			(second == "USER" || second == "ROLE" || second == "SERVER"),
		first == "SET" && (second == "PASSWORD" || second == "ROLE" || second == "DEFAULT" || second == "GLOBAL"),
		first == "LOAD" && !strings.Contains(strings.Join(f, " "), " LOCAL "),
		strings.Contains(strings.ToUpper(sql), "LOAD_FILE"), strings.Contains(strings.ToUpper(sql), "OUTFILE"),
		strings.Contains(strings.ToUpper(sql), "DUMPFILE"):
		return sqlerr.New(sqlerr.ErSpecificAccessDenied,
			"Access denied; you need (at least one of) the SUPER privilege(s) for this operation (through shardproxy, administer the backends directly)")
	case strings.Contains(strings.ToUpper(sql), "INFORMATION_SCHEMA"), strings.Contains(strings.ToUpper(sql), "PERFORMANCE_SCHEMA"):
		// The proxy filters information_schema by rewriting the parsed statement; unparsed
		// text would read every database of the backend.
		return sqlerr.New(sqlerr.ErSpecificAccessDenied,
			"Access denied; a statement the proxy cannot parse may not read information_schema or performance_schema")
	}
	return nil
}

// Schema refuses a schema a statement names (a qualifier of a table, column or routine, the
// database of a SHOW) when it is a system schema that describes the backend server, its
// accounts and every database on it: 1044 for user, as MariaDB answers. Whether user may
// use a logical database is the rules' to say, not the barrier's.
func Schema(user, schema string) error {
	switch strings.ToLower(schema) {
	case "mysql", "performance_schema", "sys":
		return sqlerr.New(sqlerr.ErDBAccessDenied, "Access denied for user '%s' to database '%s'", user, schema)
	}
	return nil
}

// Table refuses the information_schema tables that describe the whole backend server
// rather than the client's databases: PROCESSLIST lists the server's sessions; the INNODB_*
// tables (which MariaDB also guards with PROCESS) name the tables of every database as
// db/table. Tables of other schemas pass (see Schema).
func Table(schema, table string) error {
	if !strings.EqualFold(schema, "information_schema") {
		return nil
	}
	if t := strings.ToLower(table); t == "processlist" || strings.HasPrefix(t, "innodb_") {
		return sqlerr.New(sqlerr.ErSpecificAccessDenied, "Access denied; you need (at least one of) the PROCESS privilege(s) for this operation")
	}
	return nil
}

// Function refuses the functions that reach beyond the client's databases: LOAD_FILE reads
// a file of the backend server.
func Function(name string) error {
	if strings.EqualFold(name, "load_file") {
		return sqlerr.New(sqlerr.ErSpecificAccessDenied, "Access denied; you need (at least one of) the FILE privilege(s) for this operation")
	}
	return nil
}

// tableOptions names the privilege MariaDB would want for table options that reach beyond
// the table's own database, "" for none: server paths (DATA / INDEX DIRECTORY), other
// servers (CONNECTION, and engines that connect to them or read files), other tables (the
// UNION of a MERGE table). Engines are judged by an allow-list.
func tableOptions(opts []*ast.TableOption) string {
	for _, o := range opts {
		switch o.Tp {
		case ast.TableOptionDataDirectory, ast.TableOptionIndexDirectory:
			return "FILE"
		case ast.TableOptionConnection, ast.TableOptionUnion:
			return "SUPER"
		case ast.TableOptionEngine:
			switch strings.ToLower(o.StrValue) {
			case "", "innodb", "aria", "myisam", "memory", "heap", "archive", "blackhole", "csv", "rocksdb", "sequence":
			default:
				return "SUPER" // CONNECT, FEDERATED, SPIDER, MERGE, S3, OQGRAPH, ...
			}
		}
	}
	return ""
}
