package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

var cliError = regexp.MustCompile(`ERROR (\d+) \(([0-9A-Z]{5})\)`)

// cliCode runs sql with the mariadb CLI (libmariadb) and returns the error code it reported
// ("" for none) and its output (stdout, then stderr).
func cliCode(t *testing.T, c cli, args []string, sql string) (code, out string) {
	code, stdout, stderr := cliRun(t, c, args, sql)
	return code, stdout + stderr
}

func cliRun(t *testing.T, c cli, args []string, sql string) (code, stdout, stderr string) {
	t.Helper()
	stdout, stderr, _ = c.run(t, "", append(append([]string{}, args...), "--batch", "--skip-column-names", "-e", sql)...)
	if m := cliError.FindStringSubmatch(stderr); m != nil {
		return m[1], stdout, stderr
	}
	return "", stdout, stderr
}

// testBarrier drives every path by which SQL reaches a backend with the mariadb CLI, as the
// attacks of issue 12 did (the proxy's backend account is root), and checks on MariaDB
// itself that nothing was created.
func testBarrier(t *testing.T, e *env) {
	mariadb := cli{path: requireTool(t, "/usr/bin/mariadb", "mariadb-client")}
	m := dbMap{Logical: "bar", Physical: "bar_phys"}
	p := startProxy(t, e.config(t, m))
	mariadb.addr = p.Addr
	app := []string{"-u", appUser, "-p" + appPass, m.Logical}
	mustExec(t, e.direct(t, m.Physical), "CREATE TABLE IF NOT EXISTS t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))")
	t.Cleanup(func() { e.rootExec(t, "DROP USER IF EXISTS 'bar_evil'@'%'", "DROP USER IF EXISTS 'bar_evil2'@'%'") })

	for _, tc := range []struct {
		name, sql, code string
	}{
		{"CreateUser", `CREATE USER bar_evil IDENTIFIED BY 'x'`, "1227"},
		{"PrepareCreateUser", `PREPARE s FROM 'CREATE USER bar_evil@"%" IDENTIFIED BY "x"'; EXECUTE s`, "1227"},
		{"PrepareBackendAccounts", `PREPARE s FROM 'SELECT user,host FROM mysql.user'; EXECUTE s`, "1044"},
		{"ExecuteImmediate", `EXECUTE IMMEDIATE 'SELECT user FROM mysql.user LIMIT 2'`, "1044"},
		{"PrepareLoadFile", `PREPARE s FROM 'SELECT LENGTH(LOAD_FILE("/etc/passwd"))'; EXECUTE s`, "1227"},
		{"PrepareFromVariable", `SET @q = 'SELECT user FROM mysql.user'; PREPARE s FROM @q; EXECUTE s`, "1044"},
		{"PrepareFromVariableCreateUser", `SET @q = 'CREATE USER bar_evil'; PREPARE s FROM @q; EXECUTE s`, "1227"},
		{"CreateOrReplaceUser", `CREATE OR REPLACE USER bar_evil2 IDENTIFIED BY 'x'`, "1227"},
		{"SetStatementFor", `SET STATEMENT max_statement_time=10 FOR SELECT user FROM mysql.user`, "1044"},
		{"SetStatementBinlogOff", `SET STATEMENT sql_log_bin=0 FOR INSERT INTO t (v) VALUES ('hidden')`, "1227"},
		{"MariaDBExecutableComment", `SELECT 1 /*M!, (SELECT COUNT(*) FROM mysql.user) */`, "1044"},
		{"MariaDBExecutableCommentInString", `SELECT '/*M!, x */'`, "1235"},
		{"ReturningSubquery", `INSERT INTO t (v) VALUES ('r') RETURNING (SELECT user FROM mysql.user LIMIT 1)`, "1044"},
		{"UnparsedText", `HANDLER t OPEN`, "1064"},
		{"ShowGrants", `SHOW GRANTS`, "1227"}, // root's grants, password hash included
		{"ShowCreateUser", `SHOW CREATE USER root`, "1227"},
		{"ExplainForConnection", `EXPLAIN FOR CONNECTION 1`, "1227"}, // any backend session of the proxy's account
		{"SetLogDisabledStatements", `SET SESSION log_disabled_statements = 'sp'`, "1227"},
		// Allowed shapes still work, checked and routed.
		{"PrepareExecute", `PREPARE s FROM 'SELECT COUNT(*) + ? FROM t'; SET @n = 1; EXECUTE s USING @n; DEALLOCATE PREPARE s`, ""},
		{"PrepareFromVariableAllowed", `SET @q = 'SELECT COUNT(*) FROM t WHERE id > ?', @n = 0; PREPARE s FROM @q; EXECUTE s USING @n`, ""},
		{"SetStatementAllowed", `SET STATEMENT max_statement_time=10 FOR SELECT COUNT(*) FROM t`, ""},
		{"Returning", `INSERT INTO t (v) VALUES ('ret') RETURNING id > 0`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cliRun(t, mariadb, app, tc.sql)
			if code != tc.code {
				t.Errorf("%s: the CLI reported error %q, want %q\n%s%s", tc.sql, code, tc.code, stdout, stderr)
			}
			if strings.Contains(stdout, "root") || strings.Contains(stdout, "mariadb.sys") {
				t.Errorf("%s: backend accounts leaked:\n%s", tc.sql, stdout)
			}
		})
	}
	t.Run("EscapeUnsafeCharset", func(t *testing.T) {
		// The GBK injection: in GBK, 0xbf 0x5c is one character, so MariaDB reads
		// 'x\xbf\' as a closed string where a byte-reading parser sees an escaped quote.
		attack := "SELECT 'x\xbf\\' UNION SELECT user FROM mysql.user -- '"
		for _, tc := range []struct{ name, dsnParam, set string }{
			{"SetNames", "", "SET NAMES gbk"},
			{"Handshake", "collation=gbk_chinese_ci", ""},
			{"FromVariable", "", "SET @cs = 'gbk'; SET character_set_client = @cs"}, // judged once read back
		} {
			t.Run(tc.name, func(t *testing.T) {
				var params []string
				if tc.dsnParam != "" {
					params = append(params, tc.dsnParam)
				}
				conn, err := p.open(t, appUser, appPass, m.Logical, params...).Conn(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				switch {
				case strings.Contains(tc.set, "@cs"):
					for _, q := range strings.Split(tc.set, "; ") {
						mustExec(t, conn, q)
					}
				case tc.set != "":
					_, err := conn.ExecContext(context.Background(), tc.set)
					wantError(t, err, 1235, "42000")
				}
				r, err := tryQuery(conn, attack)
				if err != nil {
					return // refused is fine too
				}
				for _, row := range r.Rows {
					if v := text(row[0]); v == "root" || v == "mariadb.sys" {
						t.Fatalf("backend accounts leaked through an escape-unsafe client character set: %v", r.Rows)
					}
				}
			})
		}
	})
	t.Run("SQLModeQuoting", func(t *testing.T) {
		// Under ANSI_QUOTES MariaDB ends "a\" at its second quote (the name a\); a parser
		// reading \" as an escaped quote would see one long name and miss the UNION.
		mustExec(t, e.direct(t, m.Physical), "CREATE TABLE IF NOT EXISTS x (`a\\` INT)")
		attack := `SELECT "a\" FROM x WHERE 0 UNION SELECT user FROM mysql.user -- " FROM t`
		for _, mode := range []string{"ANSI_QUOTES", "ANSI_QUOTES,EMPTY_STRING_IS_NULL", "ANSI"} {
			t.Run(mode, func(t *testing.T) {
				conn, err := p.open(t, appUser, appPass, m.Logical).Conn(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				mustExec(t, conn, "SET sql_mode = '"+mode+"'")
				r, err := tryQuery(conn, attack)
				if err == nil {
					t.Fatalf("%s under %s ran: %v", attack, mode, r.Rows)
				}
				wantError(t, err, 1235, "42000")
				if got := queryString(t, conn, `SELECT COUNT(*) FROM "x"`); got != "0" {
					t.Errorf("a plain ANSI_QUOTES statement: %q", got)
				}
			})
		}
		t.Run("Oracle", func(t *testing.T) {
			conn, err := p.open(t, appUser, appPass, m.Logical).Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			mustExec(t, conn, "SET sql_mode = 'ORACLE'")
			_, err = conn.ExecContext(context.Background(), "SELECT 1")
			wantError(t, err, 1235, "42000")
			mustExec(t, conn, "SET sql_mode = DEFAULT")
			if got := queryString(t, conn, "SELECT 1"); got != "1" {
				t.Errorf("after SET sql_mode = DEFAULT: %q", got)
			}
		})
	})
	if n := queryString(t, e.root, "SELECT COUNT(*) FROM mysql.user WHERE user LIKE 'bar_evil%'"); n != "0" {
		t.Errorf("%s users named bar_evil* exist on the backend, want none", n)
	}
	if n := queryString(t, e.direct(t, m.Physical), "SELECT COUNT(*) FROM t WHERE v IN ('hidden', 'r')"); n != "0" {
		t.Errorf("%s refused rows were written, want none", n)
	}
}

// testResetEverything: COM_RESET_CONNECTION leaves nothing of the session behind: the
// session deadline, the transaction's bookkeeping (which shard it wrote), the parser's
// sql_mode and SQL-level prepared statements.
func testResetEverything(t *testing.T, e *env) {
	a, b := dbMap{Logical: "rsta", Physical: "rsta_phys"}, dbMap{Logical: "rstb", Physical: "rstb_phys"}
	p := startProxy(t, e.config(t, a, b))
	for _, d := range []dbMap{a, b} {
		mustExec(t, e.direct(t, d.Physical), "CREATE TABLE IF NOT EXISTS w (id INT AUTO_INCREMENT PRIMARY KEY)")
	}
	c := connectRaw(t, p.Addr, sha2User, sha2Pass, a.Logical)
	for _, q := range []string{
		"SET max_execution_time = 50",
		"SET SESSION sql_mode = 'ANSI_QUOTES'",
		"PREPARE ps FROM 'SELECT 1'",
		"BEGIN",
		"INSERT INTO rsta.w VALUES ()", // the transaction writes shard s0
	} {
		if _, err := c.query(q); err != nil {
			t.Fatalf("%q: %v", q, err)
		}
	}
	if err := c.command(comResetConnection, nil); err != nil {
		t.Fatal(err)
	}
	if r, err := c.readResult(); err != nil || r.OK == nil {
		t.Fatalf("COM_RESET_CONNECTION: %+v, %v", r, err)
	}
	checks := []struct {
		name, sql string
		want      string // "" for an OK; "ERR nnnn" for an error
	}{
		// First, before any other statement could clear stale bookkeeping: an implicit
		// transaction may write another shard (with the old transaction's written shard
		// left over, it was refused as a second writing shard).
		{"implicit transaction", "SET autocommit = 0", ""},
		{"write to another shard", "INSERT INTO rstb.w VALUES ()", ""},
		{"commit", "COMMIT", ""},
		{"autocommit", "SET autocommit = 1", ""},
		{"session deadline", "SELECT SLEEP(0.2)", "0"},
		{"@@max_execution_time", "SELECT @@max_execution_time", "0"},
		{"parser sql_mode", `SELECT DATABASE(), "x"`, "x"}, // rewritten by the proxy: a stale ANSI_QUOTES parser makes "x" a column
		{"SQL-level prepared statement", "EXECUTE ps", "ERR 1243"},
	}
	for _, ck := range checks {
		rs, err := c.query(ck.sql)
		got := ""
		var se *serverError
		switch {
		case errors.As(err, &se):
			got = fmt.Sprintf("ERR %d", se.Code)
		case err != nil:
			t.Fatalf("%s: %q: %v", ck.name, ck.sql, err)
		case len(rs) == 1 && len(rs[0].Rows) == 1:
			row := rs[0].Rows[0]
			for range rs[0].Columns { // the last column's value
				v, _, n := lenencString(row)
				got, row = string(v), row[n:]
			}
		}
		if got != ck.want {
			t.Errorf("%s after reset: %q gave %q, want %q", ck.name, ck.sql, got, ck.want)
		}
	}
}

// testServerCodes: the errors the proxy sends when a backend is unreachable or dies during
// a statement carry server codes, which libmariadb (the mariadb CLI) reports as they are
// (a client-range code made it report 2027 "Received malformed packet"); a write whose
// outcome is unknown closes the client connection, so the CLI reports its own 2013.
func testServerCodes(t *testing.T, e *env) {
	mariadb := cli{path: requireTool(t, "/usr/bin/mariadb", "mariadb-client")}
	m := dbMap{Logical: "codes", Physical: "codes_phys"}
	cfg := e.config(t, m)
	mustExec(t, e.direct(t, m.Physical), "CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY)")
	app := []string{"-u", appUser, "-p" + appPass, m.Logical}

	t.Run("BackendUnreachable", func(t *testing.T) {
		down := e.config(t, m)
		down.Backends[0].Addr = "127.0.0.1:1" // nothing listens there
		p := startProxy(t, down)
		mariadb.addr = p.Addr
		code, out := cliCode(t, mariadb, app, "SELECT 1")
		if code != "1429" || !strings.Contains(out, "Can't connect to backend b0") {
			t.Errorf("backend down: the CLI reported %q, want 1429 naming the backend:\n%s", code, out)
		}
	})

	p := startProxy(t, cfg)
	mariadb.addr = p.Addr
	killBackend := func(t *testing.T, marker string) {
		var id string
		eventually(t, 10*time.Second, "the statement runs on MariaDB", func() error {
			err := e.root.QueryRowContext(context.Background(),
				// In SLEEP(): for the read, the rows before it have been sent.
				"SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND INFO NOT LIKE '%PROCESSLIST%' AND STATE = 'User sleep'",
				"%"+marker+"%").Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("not yet")
			}
			return err
		})
		e.rootExec(t, "KILL CONNECTION "+id)
	}
	t.Run("ReadLostMidResult", func(t *testing.T) {
		done := make(chan string, 1)
		go func() {
			code, out := cliCode(t, mariadb, app,
				"SELECT seq, REPEAT('rd_marker', 20), IF(seq = 3000, SLEEP(30), 0) FROM seq_1_to_3000") // ~600 kB of rows, then a wait
			done <- code + " " + out
		}()
		killBackend(t, "rd_marker")
		got := <-done
		if !strings.HasPrefix(got, "1430 ") || !strings.Contains(got, "Lost connection to the backend") {
			t.Errorf("backend connection killed during a read: the CLI reported %q, want 1430", got)
		}
	})
	t.Run("WriteLostOutcomeUnknown", func(t *testing.T) {
		done := make(chan string, 1)
		go func() {
			code, out := cliCode(t, mariadb, app, "INSERT INTO t SELECT SLEEP(30) + LENGTH('wr_marker')")
			done <- code + " " + out
		}()
		killBackend(t, "wr_marker")
		got := <-done
		if !strings.HasPrefix(got, "2013 ") {
			t.Errorf("backend connection killed during a write: the CLI reported %q, want its own 2013 (connection closed)", got)
		}
	})
	// The proxy survived all of it.
	if code, out := cliCode(t, mariadb, app, "SELECT COUNT(*) FROM t"); code != "" {
		t.Errorf("after the backend losses: %s", out)
	}
}

// testLeastPrivilege runs the proxy with the backend account the README's Security section
// describes — data privileges on the shard databases and CREATE, INSERT, SELECT, DELETE on
// the XA decision log, no SUPER, no PROCESS, no CONNECTION ADMIN — and shows normal work, a
// multi-shard write (XA with its decision log) and KILL QUERY (a statement deadline) work.
func testLeastPrivilege(t *testing.T, e *env) {
	m := dbMap{Logical: "lp", Physical: "lp0_phys"}
	cfg := e.config(t, m)
	e.rootExec(t, "CREATE DATABASE IF NOT EXISTS lp1_phys",
		"CREATE USER IF NOT EXISTS 'sp_least'@'%' IDENTIFIED BY 'leastpw'")
	for _, db := range []string{"lp0_phys", "lp1_phys"} {
		e.rootExec(t, "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON `"+db+"`.* TO 'sp_least'@'%'",
			"CREATE TABLE IF NOT EXISTS `"+db+"`.acct (id INT PRIMARY KEY, v INT)", "DELETE FROM `"+db+"`.acct")
	}
	e.rootExec(t, "GRANT CREATE, INSERT, SELECT, DELETE ON `shardproxy`.* TO 'sp_least'@'%'")
	t.Cleanup(func() { e.rootExec(t, "DROP USER IF EXISTS 'sp_least'@'%'") })
	if g := queryString(t, e.root, "SELECT COUNT(*) FROM mysql.user WHERE user = 'sp_least' AND (Super_priv = 'Y' OR Process_priv = 'Y')"); g != "0" {
		t.Fatalf("sp_least has SUPER or PROCESS")
	}
	cfg.Backends[0].User, cfg.Backends[0].Password = "sp_least", "leastpw"
	cfg.Shards = append(cfg.Shards, shardConfig{Name: "s1", Primary: "b0", Database: "lp1_phys"})
	cfg.Schemes = []map[string]any{{"name": "by_id", "function": "mod", "shards": []string{"s0", "s1"}}}
	cfg.Databases[0].Tables = []map[string]any{{"name": "acct", "kind": "sharded", "key": "id", "scheme": "by_id"}}
	p := startProxy(t, cfg)
	db := p.open(t, appUser, appPass, m.Logical)

	mustExec(t, db, "INSERT INTO acct (id, v) VALUES (1, 10), (2, 20), (3, 30), (4, 40)") // two shards: XA
	if got := queryString(t, db, "SELECT SUM(v) FROM acct"); got != "100" {
		t.Errorf("SUM(v) through the proxy = %s, want 100", got)
	}
	for _, db := range []string{"lp0_phys", "lp1_phys"} {
		if n := queryString(t, e.root, "SELECT COUNT(*) FROM `"+db+"`.acct"); n != "2" {
			t.Errorf("%s holds %s rows, want 2 (the multi-shard write committed on both)", db, n)
		}
	}
	mustExec(t, db, "UPDATE acct SET v = v + 1 WHERE id = 3")

	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mustExec(t, conn, "SET max_execution_time = 200")
	start := time.Now()
	_, err = conn.ExecContext(context.Background(), "SELECT 'lp_marker', SLEEP(20) FROM acct WHERE id = 1")
	wantError(t, err, 3024, "HY000")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the deadline answered after %v", d)
	}
	// KILL QUERY of the proxy's own connection worked (the proxy logs "kill query failed"
	// otherwise): the query is not running any more.
	eventually(t, 5*time.Second, "the interrupted query is gone from MariaDB", func() error {
		n := queryString(t, e.root, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%lp_marker%' AND INFO NOT LIKE '%PROCESSLIST%'")
		if n != "0" {
			return fmt.Errorf("%s still running", n)
		}
		return nil
	})
	logs := p.log.String()
	if strings.Contains(logs, "kill query failed") {
		t.Errorf("KILL QUERY failed for the least-privilege account:\n%s", grepLines(logs, "kill query failed"))
	}
	if strings.Contains(logs, "denied") {
		t.Errorf("the proxy was denied something:\n%s", grepLines(logs, "denied"))
	}
}
