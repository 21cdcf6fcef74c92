package router

import (
	"context"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/sqlerr"
)

// TestBarrierMariaDBShapes: MariaDB-only statements the parser cannot read pass in their
// allow-listed shapes, checked and planned through their parsed equivalent; what the
// backend receives is the planned statement with the MariaDB part put back. EXECUTE
// IMMEDIATE runs its text as a direct statement.
func TestBarrierMariaDBShapes(t *testing.T) {
	cases := []struct {
		name string
		sql  string
		code uint16   // 0: allowed
		sent []string // what the backend receives when allowed (after USE)
	}{
		{"CreateOrReplaceTable", `CREATE OR REPLACE TABLE x (a INT) ENGINE=InnoDB`, 0, []string{"CREATE OR REPLACE TABLE x (a INT) ENGINE=InnoDB"}},
		{"CreateOrReplaceTemporary", "create or replace\ntemporary table x (a int)", 0, []string{"CREATE OR REPLACE temporary table x (a int)"}},
		{"CreateOrReplaceQualified", `CREATE OR REPLACE TABLE blog.x LIKE blog.t`, 0, []string{"CREATE OR REPLACE TABLE `blog_p`.`x` LIKE `blog_p`.`t`"}},
		{"CreateOrReplaceAsSelect", `CREATE OR REPLACE TABLE x AS SELECT * FROM t`, 0, []string{"CREATE OR REPLACE TABLE x AS SELECT * FROM t"}},
		{"CreateOrReplaceCopyOfBackendAccounts", `CREATE OR REPLACE TABLE x AS SELECT * FROM mysql.user`, sqlerr.ErDBAccessDenied, nil},
		{"CreateOrReplaceLikeBackendAccounts", `CREATE OR REPLACE TABLE x LIKE mysql.user`, sqlerr.ErDBAccessDenied, nil},
		{"CreateOrReplaceInSystemSchema", `CREATE OR REPLACE TABLE mysql.user (a INT)`, sqlerr.ErDBAccessDenied, nil},
		{"CreateOrReplaceConnectEngine", `CREATE OR REPLACE TABLE x (a TEXT) ENGINE=CONNECT`, sqlerr.ErSpecificAccessDenied, nil},
		{"CreateOrReplaceDataDirectory", `CREATE OR REPLACE TABLE x (a INT) DATA DIRECTORY='/tmp'`, sqlerr.ErSpecificAccessDenied, nil},
		{"CreateOrReplaceHiddenComment", `CREATE OR REPLACE TABLE x (a INT /*M! , b TEXT AS (LOAD_FILE('/etc/passwd')) */)`, sqlerr.ErSpecificAccessDenied, nil},
		{"CreateOrReplaceTwoStatements", `CREATE OR REPLACE TABLE x (a INT); CREATE USER evil`, sqlerr.ErSpecificAccessDenied, []string{"CREATE OR REPLACE TABLE x (a INT)"}},
		{"CreateOrReplaceUser", `CREATE OR REPLACE USER evil IDENTIFIED BY 'x'`, sqlerr.ErSpecificAccessDenied, nil},
		{"CreateOrReplaceIfNotExists", `CREATE OR REPLACE TABLE IF NOT EXISTS x (a INT)`, 0, []string{"CREATE OR REPLACE TABLE IF NOT EXISTS x (a INT)"}}, // MariaDB answers 1221
		{"WithSystemVersioning", "CREATE TABLE x (a INT) ENGINE=InnoDB\nWITH SYSTEM VERSIONING;", 0, []string{"CREATE TABLE x (a INT) ENGINE=InnoDB WITH SYSTEM VERSIONING"}},
		{"OrReplaceWithSystemVersioning", "CREATE OR REPLACE TABLE blog.x (a INT) with system versioning", 0, []string{"CREATE OR REPLACE TABLE `blog_p`.`x` (`a` INT) WITH SYSTEM VERSIONING"}},
		{"SystemVersioningInComment", "CREATE TABLE x (a INT) -- WITH SYSTEM VERSIONING", 0, []string{"CREATE TABLE x (a INT) -- WITH SYSTEM VERSIONING"}},
		{"SystemVersioningConnectEngine", `CREATE TABLE x (a INT) ENGINE=CONNECT WITH SYSTEM VERSIONING`, sqlerr.ErSpecificAccessDenied, nil},
		{"SystemVersioningAsSelect", `CREATE TABLE x AS SELECT 1 WITH SYSTEM VERSIONING`, sqlerr.ErNotSupportedYet, nil},
		{"SystemVersioningInSystemSchema", `CREATE TABLE mysql.x (a INT) WITH SYSTEM VERSIONING`, sqlerr.ErDBAccessDenied, nil},
		{"AddSystemVersioning", `ALTER TABLE t ADD SYSTEM VERSIONING`, 0, []string{"ALTER TABLE t ADD SYSTEM VERSIONING"}},
		{"DropSystemVersioningQualified", `alter table blog.t drop system versioning;`, 0, []string{"ALTER TABLE `blog_p`.`t` DROP SYSTEM VERSIONING"}},
		{"AddSystemVersioningSystemSchema", `ALTER TABLE mysql.user ADD SYSTEM VERSIONING`, sqlerr.ErDBAccessDenied, nil},
		{"AddSystemVersioningWithMore", `ALTER TABLE t ENGINE=CONNECT, ADD SYSTEM VERSIONING`, sqlerr.ErParse, nil},

		{"UUIDColumns", "CREATE TABLE `x` (\n  `id` uuid NOT NULL DEFAULT uuid(),\n  `ip` inet6 DEFAULT NULL,\n  `ip4` INET4,\n  `b` int(11) INVISIBLE DEFAULT NULL,\n  uuid uuid\n) ENGINE=InnoDB", 0,
			[]string{"CREATE TABLE `x` (\n  `id` uuid NOT NULL DEFAULT uuid(),\n  `ip` inet6 DEFAULT NULL,\n  `ip4` INET4,\n  `b` int(11) INVISIBLE DEFAULT NULL,\n  uuid uuid\n) ENGINE=InnoDB"}},
		{"UUIDOrReplace", "CREATE OR REPLACE TABLE x (u UUID) WITH SYSTEM VERSIONING", 0, []string{"CREATE OR REPLACE TABLE x (u UUID) WITH SYSTEM VERSIONING"}},
		{"UUIDOrReplaceQualified", "CREATE OR REPLACE TABLE blog.x (u UUID)", sqlerr.ErNotSupportedYet, nil},
		{"UUIDAddColumn", "ALTER TABLE t ADD COLUMN u UUID", 0, []string{"ALTER TABLE t ADD COLUMN u UUID"}},
		{"UUIDBesideBackendAccounts", "CREATE TABLE x (u UUID) AS SELECT user FROM mysql.user", sqlerr.ErDBAccessDenied, nil},
		{"UUIDBesideConnectEngine", "CREATE TABLE x (u UUID) ENGINE=CONNECT", sqlerr.ErSpecificAccessDenied, nil},
		{"InvisibleDatabaseName", "CREATE TABLE x (u UUID) AS SELECT * FROM invisible . secret", sqlerr.ErBadDB, nil},
		{"UUIDQualified", "CREATE TABLE blog.x (u UUID)", sqlerr.ErNotSupportedYet, nil},
		{"UUIDInComment", "CREATE TABLE x (u UUID) /* x */", sqlerr.ErParse, nil},

		{"SelectIntoEnd", `SELECT COUNT(*), MAX(a) FROM t WHERE a > 1 INTO @n, @m`, 0, []string{"SELECT COUNT(*), MAX(a) FROM t WHERE a > 1 INTO @n, @m"}},
		{"SelectIntoBeforeFrom", `SELECT a INTO @a FROM t LIMIT 1`, 0, []string{"SELECT a FROM t LIMIT 1 INTO @a"}},
		{"SelectIntoNoFrom", `SELECT 1, 'x' INTO @one, @x;`, 0, []string{"SELECT 1, 'x' INTO @one, @x"}},
		{"SelectIntoForUpdate", "SELECT a FROM t WHERE a = 1 FOR UPDATE INTO @`a b`", 0, []string{"SELECT a FROM t WHERE a = 1 FOR UPDATE INTO @`a b`"}},
		{"SelectIntoQualified", `SELECT a FROM blog.t INTO @a`, 0, []string{"SELECT `a` FROM `blog_p`.`t` INTO @a"}},
		{"SelectIntoBackendAccounts", `SELECT user INTO @u FROM mysql.user LIMIT 1`, sqlerr.ErDBAccessDenied, nil},
		{"SelectIntoLoadFile", `SELECT LOAD_FILE('/etc/passwd') INTO @f`, sqlerr.ErSpecificAccessDenied, nil},
		{"SelectIntoOutfile", `SELECT 1 INTO OUTFILE '/tmp/x'`, sqlerr.ErSpecificAccessDenied, nil},
		{"SelectIntoSystemVariable", `SELECT 1 INTO @@sql_log_bin`, sqlerr.ErParse, nil},
		{"SelectIntoThenStatement", `SELECT 1 INTO @a; CREATE USER evil`, sqlerr.ErSpecificAccessDenied, []string{"SELECT 1 INTO @a"}},
		{"SelectIntoInfoSchema", `SELECT COUNT(*) INTO @n FROM information_schema.TABLES`, sqlerr.ErNotSupportedYet, nil},

		{"CreateOrReplaceSequence", "CREATE OR REPLACE SEQUENCE s START WITH 10", 0, []string{"CREATE OR REPLACE SEQUENCE s START WITH 10"}},
		{"CreateOrReplaceSequenceSystemSchema", "CREATE OR REPLACE SEQUENCE mysql.s", sqlerr.ErDBAccessDenied, nil},
		{"SequenceConnectEngine", "CREATE SEQUENCE s ENGINE=CONNECT", sqlerr.ErSpecificAccessDenied, nil},
		{"OrReplaceSequenceFederated", "CREATE OR REPLACE SEQUENCE s ENGINE=FEDERATED", sqlerr.ErSpecificAccessDenied, nil},
		{"SetvalDump", "DO SETVAL(`s`, 1001, 0);", 0, []string{"DO SETVAL(`s`, 1001, 0)"}},
		{"SetvalSelect", "SELECT SETVAL(s, 5, 1, 0)", 0, []string{"SELECT SETVAL(s, 5, 1, 0)"}},
		{"SetvalSystemSchema", "DO SETVAL(mysql.s, 1, 0)", sqlerr.ErDBAccessDenied, nil},
		{"SetvalQualified", "DO SETVAL(blog.s, 1, 0)", sqlerr.ErNotSupportedYet, nil},
		{"SetvalExpression", "DO SETVAL(s, (SELECT COUNT(*) FROM mysql.user), 0)", sqlerr.ErParse, nil},

		{"ExecuteImmediate", `EXECUTE IMMEDIATE 'SELECT 1'`, 0, []string{"SELECT 1"}},
		{"ExecuteImmediateUsing", `EXECUTE IMMEDIATE 'SELECT ? + a, ? FROM t WHERE a > ?' USING 1, 'x''y', -2`, 0, []string{"SELECT 1 + a, 'x''y' FROM t WHERE a > -2"}},
		{"ExecuteImmediateUsingVariable", `EXECUTE IMMEDIATE 'SELECT ?' USING @v`, 0, []string{"SELECT @`v`"}},
		{"ExecuteImmediateQualified", `EXECUTE IMMEDIATE "INSERT INTO blog.t VALUES (1)"`, 0, []string{"INSERT INTO `blog_p`.`t` VALUES (1)"}},
		{"ExecuteImmediateBackendAccounts", `EXECUTE IMMEDIATE 'SELECT user FROM mysql.user LIMIT 2'`, sqlerr.ErDBAccessDenied, nil},
		{"ExecuteImmediateCreateUser", `EXECUTE IMMEDIATE 'CREATE USER evil'`, sqlerr.ErSpecificAccessDenied, nil},
		{"ExecuteImmediateLoadFile", `EXECUTE IMMEDIATE 'SELECT LOAD_FILE(?)' USING '/etc/passwd'`, sqlerr.ErSpecificAccessDenied, nil},
		{"ExecuteImmediateSetGlobal", `EXECUTE IMMEDIATE 'SET GLOBAL read_only = 1'`, sqlerr.ErNotSupportedYet, nil},
		{"ExecuteImmediateHiddenComment", `EXECUTE IMMEDIATE 'SELECT 1 /*M!, (SELECT 2 FROM mysql.user) */'`, sqlerr.ErNotSupportedYet, nil},
		{"ExecuteImmediateNested", `EXECUTE IMMEDIATE 'EXECUTE IMMEDIATE ''SELECT user FROM mysql.user'''`, sqlerr.ErParse, nil},
		{"ExecuteImmediateUnparsedShape", `EXECUTE IMMEDIATE 'SELECT 1 INTO @a'`, 0, []string{"SELECT 1 INTO @a"}},
		{"ExecuteImmediateTwoStatements", `EXECUTE IMMEDIATE 'SELECT 1; SELECT 2'`, sqlerr.ErParse, nil},
		{"ExecuteImmediateExpression", `EXECUTE IMMEDIATE CONCAT('SELECT user FROM ', 'mysql.user')`, sqlerr.ErNotSupportedYet, nil},
		{"ExecuteImmediateUsingExpression", `EXECUTE IMMEDIATE 'SELECT ?' USING (SELECT user FROM mysql.user LIMIT 1)`, sqlerr.ErNotSupportedYet, nil},
		{"ExecuteImmediateWrongCount", `EXECUTE IMMEDIATE 'SELECT ?, ?' USING 1`, sqlerr.ErWrongArguments, nil},
		{"ExecuteImmediatePrepare", `EXECUTE IMMEDIATE 'PREPARE s FROM ''SELECT 1'''`, sqlerr.ErUnsupportedPS, nil},
		// The variable is read from the backend (the fake answers "1", not a statement).
		{"ExecuteImmediateVariable", `EXECUTE IMMEDIATE @text`, sqlerr.ErParse, []string{"SELECT @`text`"}},

		{"ProcedureBodyBackendAccounts", `CREATE PROCEDURE p() BEGIN SELECT user FROM mysql.user; END`, sqlerr.ErDBAccessDenied, nil},
		{"ProcedureBodyLoadFile", `CREATE PROCEDURE p() BEGIN DECLARE x INT; IF 1 THEN WHILE x < 1 DO SELECT LOAD_FILE('/etc/passwd'); END WHILE; END IF; END`, sqlerr.ErSpecificAccessDenied, nil},
		{"ProcedureBodyCondition", `CREATE PROCEDURE p() BEGIN IF (SELECT COUNT(*) FROM mysql.user) > 0 THEN SELECT 1; END IF; END`, sqlerr.ErDBAccessDenied, nil},
		{"ProcedureBodyCursor", `CREATE PROCEDURE p() BEGIN DECLARE c CURSOR FOR SELECT authentication_string FROM mysql.user; OPEN c; END`, sqlerr.ErDBAccessDenied, nil},
		{"ProcedureBodyCase", `CREATE PROCEDURE p(x INT) BEGIN CASE x WHEN 1 THEN SET @a = (SELECT COUNT(*) FROM performance_schema.threads); END CASE; END`, sqlerr.ErDBAccessDenied, nil},
		{"ProcedureBodySetGlobal", `CREATE PROCEDURE p() BEGIN SET GLOBAL read_only = 1; END`, sqlerr.ErSpecificAccessDenied, nil},
		{"ProcedureBody", `CREATE PROCEDURE p(x INT) BEGIN DECLARE n INT; SET n = (SELECT COUNT(*) FROM t WHERE a > x); SELECT n; END`, 0, []string{"CREATE PROCEDURE p(x INT) BEGIN DECLARE n INT; SET n = (SELECT COUNT(*) FROM t WHERE a > x); SELECT n; END"}},

		{"ShowCreateProcedureSystemSchema", "SHOW CREATE PROCEDURE mysql.AddGeometryColumn", sqlerr.ErDBAccessDenied, nil},
		{"ShowCreateProcedureQualified", "SHOW CREATE PROCEDURE blog.p", 0, []string{"SHOW CREATE PROCEDURE `blog_p`.`p`"}},
		{"ShowCreateTrigger", "SHOW CREATE TRIGGER `tr`", 0, []string{"SHOW CREATE TRIGGER `tr`"}},
		{"ShowCreateFunctionQualified", "show create function blog.f", 0, []string{"SHOW CREATE FUNCTION `blog_p`.`f`"}},
		{"ShowCreateEventSystemSchema", "SHOW CREATE EVENT mysql.e", sqlerr.ErDBAccessDenied, nil},
		{"ShowCreateTriggerTwoNames", "SHOW CREATE TRIGGER a, b", sqlerr.ErParse, nil},

		{"ShowProcedureStatus", `SHOW PROCEDURE STATUS`, 0, []string{"SELECT * FROM (SELECT `ROUTINE_SCHEMA` AS `Db`,`ROUTINE_NAME` AS `Name`,`ROUTINE_TYPE` AS `Type`,`DEFINER` AS `Definer`,`LAST_ALTERED` AS `Modified`,`CREATED` AS `Created`,`SECURITY_TYPE` AS `Security_type`,`ROUTINE_COMMENT` AS `Comment`,`CHARACTER_SET_CLIENT` AS `character_set_client`,`COLLATION_CONNECTION` AS `collation_connection`,`DATABASE_COLLATION` AS `Database Collation` FROM (SELECT * FROM `information_schema`.`ROUTINES` WHERE (`ROUTINE_SCHEMA` IS NULL OR `ROUTINE_SCHEMA` IN ('information_schema','blog_p'))) AS `ROUTINES` WHERE `ROUTINE_TYPE`='PROCEDURE') AS `routines` ORDER BY `Db`,`Name`"}},
		{"ShowFunctionStatusLike", `SHOW FUNCTION STATUS LIKE 'f%'`, 0, nil},
		{"ShowPackageBodyStatus", `SHOW PACKAGE BODY STATUS WHERE Db = 'blog'`, 0, []string{"SELECT * FROM (SELECT `ROUTINE_SCHEMA` AS `Db`,`ROUTINE_NAME` AS `Name`,`ROUTINE_TYPE` AS `Type`,`DEFINER` AS `Definer`,`LAST_ALTERED` AS `Modified`,`CREATED` AS `Created`,`SECURITY_TYPE` AS `Security_type`,`ROUTINE_COMMENT` AS `Comment`,`CHARACTER_SET_CLIENT` AS `character_set_client`,`COLLATION_CONNECTION` AS `collation_connection`,`DATABASE_COLLATION` AS `Database Collation` FROM (SELECT * FROM `information_schema`.`ROUTINES` WHERE (`ROUTINE_SCHEMA` IS NULL OR `ROUTINE_SCHEMA` IN ('information_schema','blog_p'))) AS `ROUTINES` WHERE `ROUTINE_TYPE`='PACKAGE BODY') AS `routines` WHERE `Db`='blog_p' ORDER BY `Db`,`Name`"}},
		{"ShowPackageStatusLike", `SHOW PACKAGE STATUS LIKE 'x%'`, 0, nil},
		{"PrepareShowProcedureStatus", `PREPARE s FROM 'SHOW PROCEDURE STATUS'`, sqlerr.ErNotSupportedYet, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := newFakeBackend()
			s := fakeSession(t, fakeRouter(t, be), "app", 1)
			s.db = "blog"
			var w clientRecorder
			err := s.Query(context.Background(), tc.sql, true, &w)
			if sqlCode(err) != tc.code {
				t.Fatalf("%s: %v, want code %d", tc.sql, err, tc.code)
			}
			if tc.code == 0 && tc.sent == nil {
				be.takeLog()
				return
			}
			var want []string
			for _, q := range tc.sent {
				if len(want) == 0 {
					want = append(want, "s_blog#1: USE blog_p")
				}
				want = append(want, "s_blog#1: "+q)
			}
			wantLog(t, be, want...)
		})
	}
}

// TestBarrierMariaDBShapesSharded: in a sharded database the shapes are routed as their
// parsed equivalent: CREATE OR REPLACE TABLE fans out to every physical table; SELECT ...
// INTO @var runs only where the session's user variables live.
func TestBarrierMariaDBShapesSharded(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		code uint16
		sent int // statements the backends receive (USE excluded)
	}{
		{"CREATE OR REPLACE TABLE orders (id INT, user_id INT)", 0, 4},
		{"CREATE OR REPLACE TABLE accounts (account_id INT)", 0, 8},
		{"CREATE OR REPLACE TABLE orders (id INT) ENGINE=CONNECT", sqlerr.ErSpecificAccessDenied, 0},
		{"CREATE OR REPLACE TABLE orders AS SELECT * FROM settings", sqlerr.ErNotSupportedYet, 0},
		{"CREATE OR REPLACE TABLE settings2 AS SELECT * FROM settings", 0, 1},
		{"CREATE TABLE orders (id INT, user_id INT) WITH SYSTEM VERSIONING", 0, 4},
		{"ALTER TABLE accounts ADD SYSTEM VERSIONING", 0, 8},
		{"CREATE TABLE orders (user_id INT, u UUID)", sqlerr.ErNotSupportedYet, 0},
		{"CREATE TABLE plain (id INT, u UUID)", 0, 1},
		{"SELECT COUNT(*) INTO @n FROM orders", sqlerr.ErNotSupportedYet, 0},
		{"SELECT id INTO @n FROM events WHERE id = 150", sqlerr.ErNotSupportedYet, 0},
		{"SELECT id INTO @n FROM events WHERE id = 50", 0, 1},
		{"SELECT COUNT(*) FROM settings INTO @n", 0, 1},
		{"EXECUTE IMMEDIATE 'SELECT COUNT(*) FROM orders'", 0, 4},
		{"EXECUTE IMMEDIATE 'SELECT * FROM orders WHERE user_id = ?' USING 7", 0, 1},
	} {
		be := newFakeBackend()
		s := fakeSession(t, shardedRouter(t, be), "app", 1)
		s.db = "shop"
		var w clientRecorder
		if err := s.Query(context.Background(), tc.sql, false, &w); sqlCode(err) != tc.code {
			t.Errorf("%s: %v, want code %d", tc.sql, err, tc.code)
			continue
		}
		n := 0
		for _, q := range be.takeLog() {
			if !strings.Contains(q, ": USE ") {
				n++
				if tc.code == 0 && (strings.HasPrefix(tc.sql, "CREATE OR REPLACE") && !strings.Contains(q, "CREATE OR REPLACE TABLE") ||
					strings.Contains(tc.sql, "VERSIONING") && !strings.Contains(q, " SYSTEM VERSIONING")) {
					t.Errorf("%s: sent %s", tc.sql, q)
				}
			}
		}
		if n != tc.sent {
			t.Errorf("%s: %d statements sent, want %d", tc.sql, n, tc.sent)
		}
	}
}
