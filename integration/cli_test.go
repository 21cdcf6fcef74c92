package integration

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// cli runs a MariaDB command-line tool against addr and returns its output.
type cli struct {
	path string
	addr string
}

func (c cli) run(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	host, port, _ := strings.Cut(c.addr, ":")
	// --no-defaults first: no option file of this machine may change what is tested.
	full := []string{"--no-defaults", "--protocol=TCP", "-h", host, "-P", port}
	if !strings.HasSuffix(c.path, "dump") { // mariadb-dump has no --connect-timeout
		full = append(full, "--connect-timeout=10")
	}
	full = append(full, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.path, full...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func (c cli) mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := c.run(t, stdin, args...)
	if err != nil {
		t.Fatalf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", c.path, args, err, out, errOut)
	}
	return out
}

// testMariaDBClient drives the proxy with the mariadb command-line client (libmariadb), its
// admin tool, and a dump and restore with mariadb-dump.
func testMariaDBClient(t *testing.T, e *env) {
	mariadb := cli{path: requireTool(t, "/usr/bin/mariadb", "mariadb-client")}
	m, restored := dbMap{Logical: "cli", Physical: "cli_phys"}, dbMap{Logical: "cli_restored", Physical: "cli_restored_phys"}
	same := dbMap{Logical: "clisame", Physical: "clisame"}
	p := startProxy(t, e.config(t, m, restored, same))
	mariadb.addr = p.Addr
	app := []string{"-u", appUser, "-p" + appPass}

	t.Run("Execute", func(t *testing.T) {
		out := mariadb.mustRun(t, "", append(app, "--batch", "--skip-column-names", m.Logical, "-e",
			"SELECT 1 + 1, 'héllo 😀', DATABASE(); SELECT NULL, 2.50")...)
		if want := "2\théllo 😀\tcli\nNULL\t2.50\n"; out != want {
			t.Errorf("output %q, want %q", out, want)
		}
	})

	t.Run("ScriptOnStdin", func(t *testing.T) {
		script := `
CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(10,2), note TEXT);
INSERT INTO items VALUES (1, 'apple', 0.50, NULL), (2, 'pear ✓', 1.25, 'tab\there'), (3, 'quote''s', 10.00, 'line1\nline2');
UPDATE items SET price = price * 2 WHERE id = 1;
DELETE FROM items WHERE id = 3;
-- a comment line
SELECT id, name, price, note FROM items ORDER BY id;
SELECT COUNT(*) AS n FROM cli.items;
`
		out := mariadb.mustRun(t, script, append(app, "--batch", m.Logical)...)
		want := "id\tname\tprice\tnote\n1\tapple\t1.00\tNULL\n2\tpear ✓\t1.25\ttab\\there\nn\n2\n"
		if out != want {
			t.Errorf("output:\n%s\nwant:\n%s", out, want)
		}
		if got := queryString(t, e.direct(t, m.Physical), "SELECT note FROM items WHERE id = 2"); got != "tab\there" {
			t.Errorf("stored note %q", got)
		}
	})

	t.Run("ErrorExitStatus", func(t *testing.T) {
		out, errOut, err := mariadb.run(t, "", append(app, "--batch", m.Logical, "-e", "SELECT * FROM nosuch")...)
		if err == nil {
			t.Fatalf("no error; stdout %q", out)
		}
		if !strings.Contains(errOut, "ERROR 1146 (42S02)") {
			t.Errorf("stderr %q lacks ERROR 1146 (42S02)", errOut)
		}
		// --force goes on after an error, on the same connection.
		out, _, _ = mariadb.run(t, "SELECT 1;\nSELEC 2;\nSELECT 3;\n", append(app, "--batch", "--skip-column-names", "--force", m.Logical)...)
		if out != "1\n3\n" {
			t.Errorf("--force output %q, want \"1\\n3\\n\"", out)
		}
	})

	t.Run("StoredProcedure", func(t *testing.T) {
		script := "DELIMITER //\nCREATE PROCEDURE two_results(IN n INT)\nBEGIN\n  SELECT n AS first;\n  SELECT n * 2 AS second;\nEND//\nDELIMITER ;\nCALL two_results(21);\nSELECT 'after' AS next;\n"
		out := mariadb.mustRun(t, script, append(app, "--batch", m.Logical)...)
		if want := "first\n21\nsecond\n42\nnext\nafter\n"; out != want {
			t.Errorf("output %q, want %q", out, want)
		}
	})

	t.Run("Status", func(t *testing.T) {
		out := mariadb.mustRun(t, "", append(app, m.Logical, "-e", "status")...)
		if !regexp.MustCompile(`Current database:\s+cli\n`).MatchString(out) {
			t.Errorf("status output lacks the current database:\n%s", out)
		}
	})

	t.Run("CachingSha2User", func(t *testing.T) {
		for i := range 2 { // full authentication, then the fast path
			out := mariadb.mustRun(t, "", "-u", sha2User, "-p"+sha2Pass, "--batch", "--skip-column-names", m.Logical, "-e", "SELECT 'sha2 ok'")
			if out != "sha2 ok\n" {
				t.Errorf("login %d: output %q", i, out)
			}
		}
		_, errOut, err := mariadb.run(t, "", "-u", sha2User, "-pwrong", m.Logical, "-e", "SELECT 1")
		if err == nil || !strings.Contains(errOut, "ERROR 1045 (28000)") {
			t.Errorf("wrong password: %v, stderr %q", err, errOut)
		}
	})

	t.Run("Admin", func(t *testing.T) {
		admin := cli{path: requireTool(t, "/usr/bin/mariadb-admin", "mariadb-client"), addr: p.Addr}
		if out := admin.mustRun(t, "", append(app, "ping")...); !strings.Contains(out, "is alive") {
			t.Errorf("mariadb-admin ping: %q", out)
		}
		if out := admin.mustRun(t, "", append(app, "status")...); !strings.Contains(out, "Uptime:") {
			t.Errorf("mariadb-admin status: %q", out)
		}
	})

	// mariadb-dump as a backup tool: dump through the proxy, restore through the proxy into
	// another database, compare on MariaDB.
	for _, d := range []dbMap{m, same} {
		mustExec(t, e.direct(t, d.Physical),
			"CREATE TABLE dumped (id INT PRIMARY KEY, b BLOB, s VARCHAR(50), d DATETIME(3))",
			"INSERT INTO dumped VALUES (1, 0x00FF0A27, 'it''s ✓', '2024-01-02 03:04:05.678'), (2, NULL, NULL, NULL)")
	}
	for _, tc := range []struct {
		name string
		from dbMap
		opt  string
	}{
		{"DumpAndRestore", same, "--lock-tables"},
		{"DumpAndRestoreLogicalToPhysical", m, "--lock-tables"},
		{"DumpSingleTransaction", same, "--single-transaction"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dump := cli{path: requireTool(t, "/usr/bin/mariadb-dump", "mariadb-client"), addr: p.Addr}
			sql := dump.mustRun(t, "", "-u", sha2User, "-p"+sha2Pass, tc.opt, "--skip-comments", "--hex-blob", tc.from.Logical, "dumped")
			if !strings.Contains(sql, "CREATE TABLE `dumped`") || !strings.Contains(sql, "INSERT INTO `dumped` VALUES") {
				t.Fatalf("dump lacks the table or its rows:\n%s", sql)
			}
			mariadb.mustRun(t, sql, "-u", sha2User, "-p"+sha2Pass, restored.Logical)
			q := "SELECT * FROM dumped ORDER BY id"
			sameResult(t, "restored table", query(t, e.direct(t, restored.Physical), q), query(t, e.direct(t, tc.from.Physical), q))
		})
	}
}
