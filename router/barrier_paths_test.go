package router

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/sqlerr"
)

// TestBarrierEntryPaths drives a session through every path by which SQL reaches a backend
// (router/barrier.go lists them) with a statement the barrier must refuse on it, and checks
// the error code and that no backend received anything. A new path gets its row here.
func TestBarrierEntryPaths(t *testing.T) {
	const (
		query   = iota // COM_QUERY, multi-statements on
		single         // COM_QUERY, multi-statements off
		prepare        // COM_STMT_PREPARE
		local          // COM_QUERY from a client that offers its files (LOAD DATA LOCAL)
	)
	cases := []struct {
		path    string
		sharded bool              // the shop database of plantest.ShardedConfig, else blog of plantest.PassthroughConfig
		vars    map[string]string // session variables as read back (the barrier's facts); @name: user variables the backend holds
		via     int
		sql     string
		code    uint16
	}{
		{"COM_QUERY", false, nil, single, `CREATE USER evil IDENTIFIED BY 'x'`, sqlerr.ErSpecificAccessDenied},
		{"COM_QUERY system schema", false, nil, single, `SELECT user FROM mysql.user`, sqlerr.ErDBAccessDenied},
		{"COM_QUERY server table", false, nil, single, `SELECT * FROM information_schema.PROCESSLIST`, sqlerr.ErSpecificAccessDenied},
		{"COM_QUERY DO", false, nil, single, `DO LOAD_FILE('/etc/passwd')`, sqlerr.ErSpecificAccessDenied},
		{"COM_QUERY CALL", false, nil, single, `CALL mysql.p()`, sqlerr.ErDBAccessDenied},
		{"COM_QUERY view", false, nil, single, `CREATE VIEW v AS SELECT * FROM mysql.user`, sqlerr.ErDBAccessDenied},
		{"COM_QUERY executable comment", false, nil, single, `SELECT 1 /*M!, (SELECT user FROM mysql.user) */`, sqlerr.ErDBAccessDenied},
		{"COM_QUERY escape-unsafe charset", false, map[string]string{"character_set_client": "'gbk'"}, single, "SELECT 'x\xbf\\' UNION SELECT user FROM mysql.user -- '", sqlerr.ErNotSupportedYet},
		{"COM_QUERY ANSI_QUOTES", false, map[string]string{"sql_mode": "'ANSI_QUOTES'"}, single, `SELECT "a\" FROM x UNION SELECT user FROM mysql.user -- "`, sqlerr.ErNotSupportedYet},
		{"COM_QUERY ORACLE grammar", false, map[string]string{"sql_mode": "'ORACLE'"}, single, `SELECT 1`, sqlerr.ErNotSupportedYet},
		{"SET", false, nil, single, `SET sql_log_bin = 0`, sqlerr.ErSpecificAccessDenied},
		{"SET client charset", false, nil, single, `SET NAMES gbk`, sqlerr.ErNotSupportedYet},
		{"multi-statement", false, nil, query, `CREATE USER evil; SELECT 1`, sqlerr.ErSpecificAccessDenied},
		{"batch the parser cannot read whole", false, nil, query, `CREATE USER evil; SET STATEMENT max_statement_time=1 FOR SELECT 1`, sqlerr.ErSpecificAccessDenied},
		{"batch piece", false, nil, query, `SELECT user FROM mysql.user; SET STATEMENT max_statement_time=1 FOR SELECT 1`, sqlerr.ErDBAccessDenied},
		{"unparsed text", false, nil, single, `CREATE OR REPLACE USER evil IDENTIFIED BY 'x'`, sqlerr.ErSpecificAccessDenied},
		{"unparsed text reading a file", false, nil, single, `SELECT LOAD_FILE('/etc/passwd') LIMIT ROWS EXAMINED 1`, sqlerr.ErSpecificAccessDenied},
		{"SET STATEMENT ... FOR", false, nil, single, `SET STATEMENT max_statement_time=1 FOR SELECT user FROM mysql.user`, sqlerr.ErDBAccessDenied},
		{"SET STATEMENT assignments", false, nil, single, `SET STATEMENT sql_log_bin=0 FOR INSERT INTO t VALUES (1)`, sqlerr.ErSpecificAccessDenied},
		{"SET STATEMENT administration", false, nil, single, `SET STATEMENT max_statement_time=1 FOR CREATE USER evil`, sqlerr.ErSpecificAccessDenied},
		{"RETURNING", false, nil, single, `DELETE FROM t RETURNING LOAD_FILE('/etc/passwd')`, sqlerr.ErSpecificAccessDenied},
		{"SELECT ... INTO @var", false, nil, single, `SELECT LOAD_FILE('/etc/passwd') INTO @f`, sqlerr.ErSpecificAccessDenied},
		{"CREATE OR REPLACE TABLE", false, nil, single, `CREATE OR REPLACE TABLE x AS SELECT * FROM mysql.user`, sqlerr.ErDBAccessDenied},
		{"system-versioned DDL", false, nil, single, `CREATE TABLE x (a INT) ENGINE=CONNECT WITH SYSTEM VERSIONING`, sqlerr.ErSpecificAccessDenied},
		{"MariaDB column types", false, nil, single, `CREATE TABLE x (u UUID) DATA DIRECTORY='/tmp'`, sqlerr.ErSpecificAccessDenied},
		{"SHOW CREATE PROCEDURE", false, nil, single, `SHOW CREATE PROCEDURE mysql.AddGeometryColumn`, sqlerr.ErDBAccessDenied},
		{"SQL PREPARE", false, nil, single, `PREPARE s FROM 'GRANT ALL ON *.* TO app'`, sqlerr.ErSpecificAccessDenied},
		{"SQL PREPARE system schema", false, nil, single, `PREPARE s FROM 'SELECT user FROM mysql.user'`, sqlerr.ErDBAccessDenied},
		{"SQL PREPARE executable comment", false, nil, single, `PREPARE s FROM 'SELECT 1 /*M!, (SELECT 2) */'`, sqlerr.ErNotSupportedYet},
		{"SQL PREPARE FROM @var", false, map[string]string{"@q": "SELECT 1 /*M!, (SELECT user FROM mysql.user) */"}, single, `PREPARE s FROM @q`, sqlerr.ErDBAccessDenied},
		{"SQL PREPARE of EXPLAIN", false, nil, single, `PREPARE s FROM 'EXPLAIN SELECT user FROM mysql.user'`, sqlerr.ErDBAccessDenied},
		{"EXECUTE IMMEDIATE", false, nil, single, `EXECUTE IMMEDIATE 'CREATE USER evil'`, sqlerr.ErSpecificAccessDenied},
		{"EXECUTE IMMEDIATE ... USING", false, nil, single, `EXECUTE IMMEDIATE 'SELECT LOAD_FILE(?)' USING '/etc/passwd'`, sqlerr.ErSpecificAccessDenied},
		{"EXECUTE IMMEDIATE @var", false, map[string]string{"@q": "SELECT 1 /*M!, (SELECT user FROM mysql.user) */"}, single, `EXECUTE IMMEDIATE @q`, sqlerr.ErDBAccessDenied},
		{"EXECUTE IMMEDIATE @var unparsed", false, map[string]string{"@q": "CREATE OR REPLACE USER evil"}, single, `EXECUTE IMMEDIATE @q`, sqlerr.ErSpecificAccessDenied},
		{"EXECUTE IMMEDIATE unparsed", false, nil, single, `EXECUTE IMMEDIATE 'CREATE OR REPLACE USER evil'`, sqlerr.ErSpecificAccessDenied},
		{"EXECUTE IMMEDIATE executable comment", false, nil, single, `EXECUTE IMMEDIATE 'SELECT 1 /*M!, (SELECT user FROM mysql.user) */'`, sqlerr.ErNotSupportedYet},
		{"procedure body", false, nil, single, `CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT user FROM mysql.user; END IF; END`, sqlerr.ErDBAccessDenied},
		{"procedure body administration", false, nil, single, `CREATE PROCEDURE p() BEGIN SET GLOBAL read_only = 1; END`, sqlerr.ErSpecificAccessDenied},
		{"trigger body", false, nil, single, `CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = LOAD_FILE('/etc/passwd')`, sqlerr.ErSpecificAccessDenied},
		{"function body", false, nil, single, `CREATE FUNCTION f() RETURNS TEXT BEGIN RETURN LOAD_FILE('/etc/passwd'); END`, sqlerr.ErSpecificAccessDenied},
		{"event body", false, nil, single, `CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO INSERT INTO t VALUES (LOAD_FILE('/etc/shadow'))`, sqlerr.ErSpecificAccessDenied},
		{"ALTER EVENT body", false, nil, single, `ALTER EVENT e DO INSERT INTO t VALUES (LOAD_FILE('/etc/shadow'))`, sqlerr.ErSpecificAccessDenied},
		{"LOAD DATA", false, nil, single, `LOAD DATA INFILE '/etc/passwd' INTO TABLE t`, sqlerr.ErSpecificAccessDenied},
		{"LOAD DATA LOCAL", false, nil, local, `LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE mysql.user`, sqlerr.ErDBAccessDenied},
		{"LOAD DATA LOCAL expressions", false, nil, local, `LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE t (@a) SET a = LOAD_FILE('/etc/passwd')`, sqlerr.ErSpecificAccessDenied},
		{"SELECT ... INTO OUTFILE", false, nil, single, `SELECT * FROM t INTO OUTFILE '/tmp/x'`, sqlerr.ErSpecificAccessDenied},
		{"EXPLAIN", false, nil, single, `EXPLAIN SELECT user FROM mysql.user`, sqlerr.ErDBAccessDenied},
		{"EXPLAIN FOR CONNECTION", false, nil, single, `EXPLAIN FOR CONNECTION 7`, sqlerr.ErSpecificAccessDenied},
		{"COM_STMT_PREPARE of EXPLAIN FOR CONNECTION", false, nil, prepare, `EXPLAIN FOR CONNECTION 7`, sqlerr.ErSpecificAccessDenied},
		{"ANALYZE", false, nil, single, `ANALYZE SELECT LOAD_FILE('/etc/passwd')`, sqlerr.ErSpecificAccessDenied},
		{"LOCK TABLES", false, nil, single, `LOCK TABLES mysql.user READ`, sqlerr.ErDBAccessDenied},
		{"COM_STMT_PREPARE", false, nil, prepare, `SELECT user FROM mysql.user WHERE user = ?`, sqlerr.ErDBAccessDenied},
		{"COM_STMT_PREPARE administration", false, nil, prepare, `CREATE USER evil`, sqlerr.ErSpecificAccessDenied},
		{"COM_STMT_PREPARE unparsed", false, nil, prepare, `CREATE OR REPLACE USER evil`, sqlerr.ErSpecificAccessDenied},
		{"COM_STMT_PREPARE RETURNING", false, nil, prepare, `INSERT INTO t VALUES (?) RETURNING (SELECT user FROM mysql.user LIMIT 1)`, sqlerr.ErDBAccessDenied},
		{"COM_STMT_PREPARE executable comment", false, nil, prepare, `SELECT 1 /*M!, (SELECT user FROM mysql.user) */`, sqlerr.ErDBAccessDenied},
		{"COM_STMT_PREPARE of EXPLAIN", false, nil, prepare, `EXPLAIN SELECT user FROM mysql.user`, sqlerr.ErDBAccessDenied},
		{"COM_STMT_PREPARE ORACLE grammar", false, map[string]string{"sql_mode": "'ORACLE'"}, prepare, `SELECT 1`, sqlerr.ErNotSupportedYet},
		{"DDL fanned out", true, nil, single, `ALTER TABLE orders ENGINE=CONNECT`, sqlerr.ErSpecificAccessDenied},
		{"DDL fanned out, system schema", true, nil, single, `CREATE TABLE orders2 LIKE mysql.user`, sqlerr.ErDBAccessDenied},
		{"scatter read", true, nil, single, `SELECT COUNT(*) FROM orders WHERE id > (SELECT COUNT(*) FROM mysql.user)`, sqlerr.ErDBAccessDenied},
		{"subquery run by the proxy", true, nil, single, `SELECT * FROM orders WHERE user_id IN (SELECT account_id FROM accounts WHERE LOAD_FILE('/etc/passwd') IS NULL)`, sqlerr.ErSpecificAccessDenied},
		{"INSERT ... SELECT across shards", true, nil, single, `INSERT INTO orders (id, user_id) SELECT 1, LENGTH(LOAD_FILE('/etc/passwd'))`, sqlerr.ErSpecificAccessDenied},
		{"multi-shard write", true, nil, single, `UPDATE orders SET id = (SELECT COUNT(*) FROM mysql.user)`, sqlerr.ErDBAccessDenied},
		{"LOCK TABLES on sharded tables", true, nil, single, `LOCK TABLES orders READ, mysql.user READ`, sqlerr.ErDBAccessDenied},
		{"EXPLAIN of a scatter read", true, nil, single, `EXPLAIN SELECT * FROM orders WHERE id IN (SELECT 1 FROM mysql.user)`, sqlerr.ErDBAccessDenied},
		{"LOAD DATA LOCAL into a sharded table", true, nil, local, `LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE orders (id, @u) SET user_id = LENGTH(LOAD_FILE('/etc/passwd'))`, sqlerr.ErSpecificAccessDenied},
		{"procedure body in a sharded database", true, nil, single, `CREATE PROCEDURE p() BEGIN SELECT * FROM mysql.user; END`, sqlerr.ErDBAccessDenied},
		{"COM_STMT_PREPARE scatter read", true, nil, prepare, `SELECT * FROM orders WHERE user_id = ? AND id > (SELECT COUNT(*) FROM mysql.user)`, sqlerr.ErDBAccessDenied},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			be := newFakeBackend()
			r, db := fakeRouter(t, be), "blog"
			if tc.sharded {
				r, db = shardedRouter(t, be), "shop"
			}
			s, err := r.NewSession(context.Background(), SessionInfo{ConnID: 1, User: "app", Collation: 45, LocalFiles: tc.via == local})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			s.db = db
			vars, read := map[string]string{}, []string(nil)
			for k, v := range tc.vars {
				if name, ok := strings.CutPrefix(k, "@"); ok {
					be.userVars = map[string]string{name: v}
					read = append(read, "s_"+db+"#1: USE "+db+"_p", "s_"+db+"#1: SELECT @`"+name+"`")
				} else {
					vars[k] = v
				}
			}
			s.vars.replace(vars)
			switch tc.via {
			case prepare:
				_, err = s.Prepare(context.Background(), tc.sql)
			case local:
				err = s.Query(context.Background(), tc.sql, false, &clientFileRecorder{})
			default:
				err = s.Query(context.Background(), tc.sql, tc.via == query, &clientRecorder{})
			}
			if sqlCode(err) != tc.code {
				t.Errorf("%s: %v, want code %d", tc.sql, err, tc.code)
			}
			wantLog(t, be, read...) // nothing but the user variable's value
		})
	}
}

// TestBarrierSessionMethods: each exported method of Session either carries client SQL
// (and has its rows in TestBarrierEntryPaths) or says here why it needs none. A new method
// fails this test until it is placed.
func TestBarrierSessionMethods(t *testing.T) {
	known := map[string]string{
		"Query":     "COM_QUERY: rows in TestBarrierEntryPaths",
		"Prepare":   "COM_STMT_PREPARE: rows in TestBarrierEntryPaths",
		"Execute":   "COM_STMT_EXECUTE runs what Prepare checked, with bound values as literals",
		"Explain":   "EXPLAIN SHARDS: plans through the barrier, sends nothing",
		"FieldList": "COM_FIELD_LIST: a table name of the current database, no SQL",
		"UseDB":     "COM_INIT_DB: a logical database name, checked against the user's",
		"CloseStmt": "sends nothing",
		"Reset":     "COM_RESET_CONNECTION: no client SQL",
		"Close":     "no client SQL",
		"Abandon":   "no client SQL",
		"Status":    "no client SQL",
		"Route":     "no client SQL",
		"Describe":  "no client SQL",
	}
	typ := reflect.TypeOf(&Session{})
	for i := range typ.NumMethod() {
		if name := typ.Method(i).Name; known[name] == "" {
			t.Errorf("Session.%s: say in TestBarrierSessionMethods whether it carries client SQL to a backend, and if so add its rows to TestBarrierEntryPaths", name)
		}
	}
}

// clientFileRecorder is a client that offers a file of one row to LOAD DATA LOCAL.
type clientFileRecorder struct {
	clientRecorder
	sent bool
}

func (c *clientFileRecorder) ReadFilePacket() ([]byte, error) {
	if c.sent {
		return nil, nil
	}
	c.sent = true
	return []byte("1\t2\n"), nil
}
