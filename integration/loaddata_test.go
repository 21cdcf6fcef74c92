package integration

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// testLoadData: LOAD DATA LOCAL INFILE through the proxy. Into a table on one shard the
// client's file is relayed to the backend (go-sql-driver and the mariadb CLI); a bad row
// gets the backend's own error and loads nothing; into a sharded table it is refused with
// 1235 before any of the file is read, and no shard holds a row of it; server-side LOAD DATA
// INFILE stays behind the privilege barrier.
func testLoadData(t *testing.T, e *env) {
	ld := dbMap{Logical: "ld", Physical: "ld_0"}
	cfg := e.config(t, ld)
	e.rootExec(t, "CREATE DATABASE IF NOT EXISTS ld_1")
	cfg.Shards = append(cfg.Shards, shardConfig{Name: "s1", Primary: "b0", Database: "ld_1"})
	cfg.Schemes = []map[string]any{{"name": "by_id", "function": "mod", "slots": 2, "shards": []string{"s0", "s1"}}}
	cfg.Databases[0].Tables = []map[string]any{{"name": "spread", "kind": "sharded", "key": "id", "scheme": "by_id"}}
	p := startProxy(t, cfg)
	shard0, shard1 := e.direct(t, "ld_0"), e.direct(t, "ld_1")
	for _, q := range []querier{shard0, shard1} {
		mustExec(t, q, "CREATE TABLE IF NOT EXISTS spread (id INT PRIMARY KEY, name VARCHAR(40))", "DELETE FROM spread")
	}
	mustExec(t, shard0, "CREATE TABLE IF NOT EXISTS items (id INT PRIMARY KEY, name VARCHAR(40), qty INT NOT NULL) ENGINE=InnoDB", "DELETE FROM items",
		"CREATE OR REPLACE TRIGGER items_qty BEFORE INSERT ON items FOR EACH ROW IF NEW.qty < 0 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'negative qty'; END IF")
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good.csv", "id,name,qty\n1,apple,3\n2,\"pear, ripe\",5\n3,plum ✓,7\n")
	// LOCAL makes MariaDB read bad values as warnings (it cannot stop the client's file), so
	// the bad row is refused by a trigger, as an application's constraint would.
	bad := write("bad.csv", "10,fig,1\n11,kiwi,-5\n12,lime,2\n")
	db := p.open(t, appUser, appPass, ld.Logical, "allowAllFiles=true")

	t.Run("GoDriverUnsharded", func(t *testing.T) {
		res, err := db.Exec(fmt.Sprintf(`LOAD DATA LOCAL INFILE '%s' INTO TABLE items FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '"' LINES TERMINATED BY '\n' IGNORE 1 LINES (id, name, qty)`, good))
		if err != nil {
			t.Fatalf("LOAD DATA LOCAL: %v", err)
		}
		if n, _ := res.RowsAffected(); n != 3 {
			t.Errorf("rows affected %d, want 3", n)
		}
		got := query(t, shard0, "SELECT id, name, qty FROM items ORDER BY id")
		if want := "[[1 apple 3] [2 pear, ripe 5] [3 plum ✓ 7]]"; rowsText(got) != want {
			t.Errorf("rows on the shard %v, want %s", rowsText(got), want)
		}
	})

	t.Run("BadRowLoadsNothing", func(t *testing.T) {
		// The qualified name makes the proxy rewrite the statement (logical to physical
		// database): the rewrite must not turn the error into a warning (IGNORE).
		for _, table := range []string{"items", "ld.items"} {
			_, err := db.Exec(fmt.Sprintf(`LOAD DATA LOCAL INFILE '%s' INTO TABLE %s FIELDS TERMINATED BY ','`, bad, table))
			wantError(t, err, 1644, "45000")
			if n := queryString(t, shard0, "SELECT COUNT(*) FROM items WHERE id >= 10"); n != "0" {
				t.Errorf("into %s: %s rows of the bad file were loaded", table, n)
			}
		}
		if v := queryString(t, db, "SELECT COUNT(*) FROM items"); v != "3" {
			t.Errorf("after the failed loads the connection reads %s rows, want 3", v)
		}
	})

	t.Run("StreamedLargeFile", func(t *testing.T) {
		// 200,000 rows (~6 MB) from a reader: far more than one packet, relayed as it comes.
		const rows = 200000
		mysql.RegisterReaderHandler("ldbig", func() io.Reader {
			pr, pw := io.Pipe()
			go func() {
				for i := range rows {
					if _, err := fmt.Fprintf(pw, "%d,row number %d,%d\n", 1000+i, i, i%97); err != nil {
						return
					}
				}
				_ = pw.Close()
			}()
			return pr
		})
		t.Cleanup(func() { mysql.DeregisterReaderHandler("ldbig") })
		if _, err := db.Exec("LOAD DATA LOCAL INFILE 'Reader::ldbig' INTO TABLE items FIELDS TERMINATED BY ','"); err != nil {
			t.Fatalf("LOAD DATA LOCAL of %d rows: %v", rows, err)
		}
		if n := queryString(t, shard0, "SELECT COUNT(*) FROM items WHERE id >= 1000"); n != fmt.Sprint(rows) {
			t.Errorf("%s rows on the shard, want %d", n, rows)
		}
		mustExec(t, shard0, "DELETE FROM items WHERE id >= 1000")
	})

	t.Run("ShardedRefused", func(t *testing.T) {
		_, err := db.Exec(fmt.Sprintf(`LOAD DATA LOCAL INFILE '%s' INTO TABLE spread FIELDS TERMINATED BY ',' (id, name, @qty)`, bad))
		wantError(t, err, 1235, "42000")
		for i, q := range []querier{shard0, shard1} {
			if n := queryString(t, q, "SELECT COUNT(*) FROM spread"); n != "0" {
				t.Errorf("shard %d holds %s rows of the refused load", i, n)
			}
		}
		if v := queryString(t, db, "SELECT 'still here'"); v != "still here" {
			t.Errorf("after the refusal: %q", v)
		}
	})

	t.Run("ServerSideFileRefused", func(t *testing.T) {
		_, err := db.Exec("LOAD DATA INFILE '/etc/passwd' INTO TABLE items")
		wantError(t, err, 1227, "42000")
	})

	t.Run("MariaDBClient", func(t *testing.T) {
		mariadb := cli{path: requireTool(t, "/usr/bin/mariadb", "mariadb-client"), addr: p.Addr}
		app := []string{"-u", appUser, "-p" + appPass, "--batch", ld.Logical}
		csv := write("cli.csv", "20\tcli one\t1\n21\tcli two\t2\n")
		out := mariadb.mustRun(t, "", append(app, "--local-infile=1", "-e",
			fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE items; SELECT ROW_COUNT()", csv))...)
		if !strings.HasSuffix(out, "\n2\n") {
			t.Errorf("ROW_COUNT() after the load: %q", out)
		}
		if got := query(t, shard0, "SELECT id, name FROM items WHERE id IN (20, 21) ORDER BY id"); rowsText(got) != "[[20 cli one] [21 cli two]]" {
			t.Errorf("rows on the shard %v", rowsText(got))
		}
		_, errOut, err := mariadb.run(t, "", append(app, "--local-infile=1", "-e",
			fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE spread", csv))...)
		if err == nil || !strings.Contains(errOut, "ERROR 1235 (42000)") {
			t.Errorf("sharded load by the CLI: %v, %q; want ERROR 1235", err, errOut)
		}
		// Without --local-infile the client does not offer the capability: MariaDB's answer.
		_, errOut, err = mariadb.run(t, "", append(app, "--local-infile=0", "-e",
			fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE items", csv))...)
		if err == nil || !strings.Contains(errOut, "ERROR 4166 (HY000)") {
			t.Errorf("load without --local-infile: %v, %q; want ERROR 4166", err, errOut)
		}
	})
}

// rowsText prints a result's rows as "[[a b] [c d]]", each value as text.
func rowsText(r result) string {
	rows := make([]string, len(r.Rows))
	for i, row := range r.Rows {
		vals := make([]string, len(row))
		for j, v := range row {
			vals[j] = text(v)
		}
		rows[i] = "[" + strings.Join(vals, " ") + "]"
	}
	return "[" + strings.Join(rows, " ") + "]"
}
