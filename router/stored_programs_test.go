package router

import (
	"context"
	"testing"

	"github.com/shardproxy/shardproxy/sqlerr"
)

// TestStoredPrograms: CREATE TRIGGER | FUNCTION | EVENT and their DROP pass when their body
// passes the barrier as a procedure body would; the DEFINER clause is never sent; UDFs,
// qualified names and bodies reading the backend's accounts or files are refused and nothing
// reaches the backend.
func TestStoredPrograms(t *testing.T) {
	cases := []struct {
		name string
		sql  string
		code uint16 // 0: allowed
		sent string // what the backend receives when allowed (after USE)
	}{
		{"Trigger", "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = NEW.a * 2", 0, "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = NEW.a * 2"},
		{"TriggerDump", "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `tr` BEFORE INSERT ON `t` FOR EACH ROW\nBEGIN\n  SET NEW.a = NEW.a + 1;\nEND */", 0,
			"CREATE TRIGGER `tr` BEFORE INSERT ON `t` FOR EACH ROW\nBEGIN\n  SET NEW.a = NEW.a + 1;\nEND"},
		{"TriggerOrReplaceFollows", "CREATE OR REPLACE DEFINER = CURRENT_USER() TRIGGER tr AFTER UPDATE ON t FOR EACH ROW FOLLOWS tr0 INSERT INTO t2 VALUES (OLD.a);", 0,
			"CREATE OR REPLACE TRIGGER tr AFTER UPDATE ON t FOR EACH ROW FOLLOWS tr0 INSERT INTO t2 VALUES (OLD.a)"},
		{"TriggerBackendAccounts", "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = (SELECT COUNT(*) FROM mysql.user)", sqlerr.ErDBAccessDenied, ""},
		{"TriggerLoadFile", "CREATE DEFINER='root'@'%' TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN IF 1 THEN SET NEW.a = LOAD_FILE('/etc/passwd'); END IF; END", sqlerr.ErSpecificAccessDenied, ""},
		{"TriggerSetGlobal", "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET GLOBAL read_only = 1", sqlerr.ErSpecificAccessDenied, ""},
		{"TriggerPrepare", "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN PREPARE s FROM @q; EXECUTE s; END", sqlerr.ErParse, ""}, // the parser reads no PREPARE in a body: refused all the same,
		{"TriggerOnSystemTable", "CREATE TRIGGER tr BEFORE INSERT ON mysql.user FOR EACH ROW SET @a = 1", sqlerr.ErNotSupportedYet, ""},
		{"TriggerQualifiedBody", "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW INSERT INTO blog.t2 VALUES (1)", sqlerr.ErNotSupportedYet, ""},
		{"TriggerOtherDatabase", "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW INSERT INTO invisible.secret VALUES (1)", sqlerr.ErBadDB, ""},
		{"TriggerHiddenComment", "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1 /*!50003 + LENGTH(LOAD_FILE('/etc/passwd')) */", sqlerr.ErSpecificAccessDenied, ""},

		{"Function", "CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC RETURN x * 2", 0, "CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC RETURN x * 2"},
		{"FunctionDump", "CREATE DEFINER=`root`@`localhost` FUNCTION `f`(`x` int(11)) RETURNS varchar(20) CHARSET utf8mb4 COLLATE utf8mb4_general_ci\n    READS SQL DATA\n    SQL SECURITY INVOKER\n    COMMENT 'c'\nBEGIN\n  DECLARE n INT;\n  SET n = (SELECT COUNT(*) FROM t WHERE a > x);\n  RETURN CONCAT('n=', n);\nEND", 0,
			"CREATE FUNCTION `f`(`x` int(11)) RETURNS varchar(20) CHARSET utf8mb4 COLLATE utf8mb4_general_ci\n    READS SQL DATA\n    SQL SECURITY INVOKER\n    COMMENT 'c'\nBEGIN\n  DECLARE n INT;\n  SET n = (SELECT COUNT(*) FROM t WHERE a > x);\n  RETURN CONCAT('n=', n);\nEND"},
		{"FunctionBackendAccounts", "CREATE FUNCTION f() RETURNS TEXT RETURN (SELECT GROUP_CONCAT(authentication_string) FROM mysql.user)", sqlerr.ErDBAccessDenied, ""},
		{"FunctionLoadFile", "CREATE FUNCTION f() RETURNS TEXT BEGIN RETURN LOAD_FILE('/etc/passwd'); END", sqlerr.ErSpecificAccessDenied, ""},
		{"FunctionSetGlobal", "CREATE FUNCTION f() RETURNS INT BEGIN SET GLOBAL max_connections = 1; RETURN 1; END", sqlerr.ErSpecificAccessDenied, ""},
		{"FunctionTypeSubquery", "CREATE FUNCTION f() RETURNS INT (SELECT LOAD_FILE('/etc/passwd'))", sqlerr.ErNotSupportedYet, ""},
		{"FunctionUDF", "CREATE FUNCTION evil RETURNS STRING SONAME 'evil.so'", sqlerr.ErNotSupportedYet, ""},
		{"FunctionUDFWithParens", "CREATE FUNCTION evil() RETURNS STRING SONAME 'evil.so'", sqlerr.ErNotSupportedYet, ""},
		{"FunctionQualified", "CREATE FUNCTION mysql.f() RETURNS INT RETURN 1", sqlerr.ErNotSupportedYet, ""},

		{"Event", "CREATE EVENT e ON SCHEDULE EVERY 1 HOUR STARTS CURRENT_TIMESTAMP + INTERVAL 1 DAY DO DELETE FROM t WHERE a < 0", 0, "CREATE EVENT e ON SCHEDULE EVERY 1 HOUR STARTS CURRENT_TIMESTAMP + INTERVAL 1 DAY DO DELETE FROM t WHERE a < 0"},
		{"EventDump", "/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `e` ON SCHEDULE EVERY 1 DAY STARTS '2026-01-01 00:00:00' ON COMPLETION NOT PRESERVE ENABLE DO INSERT INTO t VALUES (1) */", 0,
			"CREATE EVENT `e` ON SCHEDULE EVERY 1 DAY STARTS '2026-01-01 00:00:00' ON COMPLETION NOT PRESERVE ENABLE DO INSERT INTO t VALUES (1)"},
		{"EventBackendAccounts", "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO INSERT INTO t SELECT COUNT(*) FROM mysql.user", sqlerr.ErDBAccessDenied, ""},
		{"EventLoadFile", "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO BEGIN INSERT INTO t2 VALUES (LOAD_FILE('/etc/shadow')); END", sqlerr.ErSpecificAccessDenied, ""},
		{"EventSetGlobal", "CREATE EVENT e ON SCHEDULE AT NOW() DO SET GLOBAL read_only = 1", sqlerr.ErSpecificAccessDenied, ""},
		{"EventPrepare", "CREATE EVENT e ON SCHEDULE AT NOW() DO BEGIN PREPARE s FROM 'SELECT 1'; END", sqlerr.ErParse, ""},
		{"EventScheduleSubquery", "CREATE EVENT e ON SCHEDULE AT (SELECT MAX(password_last_changed) FROM mysql.user) DO DELETE FROM t", sqlerr.ErNotSupportedYet, ""},

		{"StatementAfterBody", "CREATE FUNCTION f() RETURNS INT RETURN 1; SELECT user FROM mysql.user", sqlerr.ErParse, ""},
		{"StatementAfterCompoundBody", "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET @a = 1; END; SELECT user FROM mysql.user", sqlerr.ErParse, ""},
		{"VersionCommentAfterLineComment", "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1 -- '\n/*!50000 + LENGTH(LOAD_FILE('/etc/passwd')) */ '", sqlerr.ErSpecificAccessDenied, ""},
		{"FunctionQualifiedReturnColumn", "CREATE FUNCTION f() RETURNS INT RETURN (SELECT MAX(t.a) FROM t)", 0, "CREATE FUNCTION f() RETURNS INT RETURN (SELECT MAX(t.a) FROM t)"},
		{"AggregateFunction", "CREATE AGGREGATE FUNCTION f(x INT) RETURNS INT BEGIN DECLARE n INT DEFAULT 0; LOOP FETCH GROUP NEXT ROW; SET n = n + x; END LOOP; END", sqlerr.ErNotSupportedYet, ""},

		{"DropTrigger", "DROP TRIGGER IF EXISTS `tr`", 0, "DROP TRIGGER IF EXISTS `tr`"},
		{"DropFunctionDump", "/*!50003 DROP FUNCTION IF EXISTS `f` */", 0, "DROP FUNCTION IF EXISTS `f`"},
		{"DropEvent", "drop event e;", 0, "DROP EVENT e"},
		{"DropQualified", "DROP FUNCTION mysql.f", sqlerr.ErNotSupportedYet, ""},

		{"AlterFunction", "ALTER FUNCTION f COMMENT 'doubles' SQL SECURITY INVOKER;", 0, "ALTER FUNCTION f COMMENT 'doubles' SQL SECURITY INVOKER"},
		{"AlterProcedure", "ALTER PROCEDURE `p` READS SQL DATA", 0, "ALTER PROCEDURE `p` READS SQL DATA"},
		{"AlterEvent", "ALTER DEFINER = 'root'@'%' EVENT e ON SCHEDULE EVERY 2 DAY DISABLE RENAME TO e2 COMMENT 'x'", 0, "ALTER EVENT e ON SCHEDULE EVERY 2 DAY DISABLE RENAME TO e2 COMMENT 'x'"},
		{"AlterEventBody", "ALTER EVENT e DO BEGIN DELETE FROM t WHERE a < 0; END", 0, "ALTER EVENT e DO BEGIN DELETE FROM t WHERE a < 0; END"},
		{"AlterEventBodyBackendAccounts", "ALTER EVENT e DO INSERT INTO t SELECT COUNT(*) FROM mysql.user", sqlerr.ErDBAccessDenied, ""},
		{"AlterEventRenameQualified", "ALTER EVENT e RENAME TO mysql.e", sqlerr.ErNotSupportedYet, ""},
		{"AlterEventScheduleSubquery", "ALTER EVENT e ON SCHEDULE AT (SELECT MAX(password_last_changed) FROM mysql.user)", sqlerr.ErNotSupportedYet, ""},
		{"AlterFunctionBody", "ALTER FUNCTION f RETURN 1", sqlerr.ErParse, ""},
		{"AlterFunctionQualified", "ALTER FUNCTION mysql.f COMMENT 'x'", sqlerr.ErNotSupportedYet, ""},
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
			if tc.code != 0 {
				wantLog(t, be)
				return
			}
			wantLog(t, be, "s_blog#1: USE blog_p", "s_blog#1: "+tc.sent)
		})
	}
}
