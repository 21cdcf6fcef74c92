package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testLoadData: LOAD DATA LOCAL INFILE through the proxy. Into a table on one shard the
// client's file is relayed to the backend (go-sql-driver and the mariadb CLI); a bad row
// gets the backend's own error and loads nothing; server-side LOAD DATA
// INFILE stays behind the privilege barrier. Into sharded and broadcast tables: see
// loadsplit_test.go.
func testLoadData(t *testing.T, e *env) {
	ld := dbMap{Logical: "ld", Physical: "ld_0"}
	cfg := e.config(t, ld)
	e.rootExec(t, "CREATE DATABASE IF NOT EXISTS ld_1")
	cfg.Shards = append(cfg.Shards, shardConfig{Name: "s1", Primary: "b0", Database: "ld_1"})
	cfg.Schemes = []map[string]any{{"name": "by_id", "function": "mod", "slots": 2, "shards": []string{"s0", "s1"}}}
	cfg.Databases[0].Tables = []map[string]any{{"name": "spread", "kind": "sharded", "key": "id", "scheme": "by_id"}}
	cfg.Server["max_allowed_packet"] = "1MB" // bounds each packet of a client's file
	e.backendUser(t, cfg, "px_ld")
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
		// 3,000 rows of 10 KB (~30 MB) from a reader: relayed packet by packet as it comes,
		// so the proxy's peak RSS grows by far less than the file.
		const rows = 3000
		mustExec(t, shard0, "CREATE TABLE IF NOT EXISTS blobs (id INT PRIMARY KEY, body MEDIUMTEXT NOT NULL) ENGINE=InnoDB", "DELETE FROM blobs")
		body := strings.Repeat("0123456789", 1024)
		loadMeasured(t, p, dedicatedConn(t, db), "ldbig", "blobs", rows, body, "relayed") // loadsplit_test.go
		if got := rowsText(query(t, shard0, "SELECT COUNT(*), SUM(LENGTH(body)) FROM blobs")); got != fmt.Sprintf("[[%d %d]]", rows, rows*len(body)) {
			t.Errorf("rows, bytes on the shard %s, want %d rows of %d bytes", got, rows, len(body))
		}
	})

	t.Run("ClientGoneMidFile", func(t *testing.T) {
		// The client sends part of its file and disconnects: the proxy must not end the
		// file for it (that would commit a partial load); the backend statement is
		// abandoned with its connection and rolled back.
		rc := connectRawLocal(t, p.Addr, ld.Logical) // loadsplit_test.go
		if err := rc.command(comQuery, []byte("LOAD DATA LOCAL INFILE 'part.csv' INTO TABLE items FIELDS TERMINATED BY ','")); err != nil {
			t.Fatal(err)
		}
		req, err := rc.readPacket()
		if err != nil || string(req) != "\xfbpart.csv" {
			t.Fatalf("LOCAL INFILE request %q, %v; want 0xFB and the file name", req, err)
		}
		if err := rc.writePacket([]byte("500,gone,1\n501,gone,2\n")); err != nil {
			t.Fatal(err)
		}
		waitRunning(t, e, "px_ld", "LOAD DATA%")
		_ = rc.nc.Close()
		wantNothingRunning(t, e, "px_ld", "LOAD DATA%", 10*time.Second)
		if n := queryString(t, shard0, "SELECT COUNT(*) FROM items WHERE id >= 500"); n != "0" {
			t.Errorf("%s rows of the abandoned file were loaded", n)
		}
		if v := queryString(t, db, "SELECT COUNT(*) FROM items"); v != "3" {
			t.Errorf("after the abandoned load: %s rows, want 3", v)
		}
	})

	t.Run("FilePacketTooLarge", func(t *testing.T) {
		rc := connectRawLocal(t, p.Addr, ld.Logical)
		if err := rc.command(comQuery, []byte("LOAD DATA LOCAL INFILE 'big.csv' INTO TABLE items FIELDS TERMINATED BY ','")); err != nil {
			t.Fatal(err)
		}
		if req, err := rc.readPacket(); err != nil || len(req) == 0 || req[0] != 0xfb {
			t.Fatalf("LOCAL INFILE request %q, %v", req, err)
		}
		big := []byte("600,big," + strings.Repeat("9", 2<<20) + "\n")
		if err := rc.writePacket(big); err != nil {
			t.Fatal(err)
		}
		ans, err := rc.readPacket()
		if err != nil || len(ans) == 0 || ans[0] != 0xff || parseErrPacket(ans).Code != 1153 {
			t.Fatalf("answer to a 2 MB file packet: %q, %v; want ERR 1153", ans, err)
		}
		if err := rc.closed(10 * time.Second); err != nil {
			t.Errorf("the connection stays open after 1153: %v", err)
		}
		wantNothingRunning(t, e, "px_ld", "LOAD DATA%", 10*time.Second)
		if n := queryString(t, shard0, "SELECT COUNT(*) FROM items WHERE id >= 500"); n != "0" {
			t.Errorf("%s rows of the refused file were loaded", n)
		}
	})

	t.Run("Spread", func(t *testing.T) { testLoadDataSpread(t, e) }) // loadsplit_test.go

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
		out = mariadb.mustRun(t, "", append(app, "--local-infile=1", "-vvv", "-e",
			fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE spread (id, name, @qty)", csv))...)
		if !strings.Contains(out, "Records: 2  Deleted: 0  Skipped: 0  Warnings: 0") {
			t.Errorf("sharded load by the CLI: %q", out)
		}
		for i, q := range []querier{shard0, shard1} {
			if got := query(t, q, "SELECT id, name FROM spread ORDER BY id"); rowsText(got) != fmt.Sprintf("[[%d cli %s]]", 20+i, []string{"one", "two"}[i]) {
				t.Errorf("shard %d after the CLI's sharded load: %v", i, rowsText(got))
			}
		}
		var errOut string
		var err error
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
