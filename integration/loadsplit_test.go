package integration

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// testLoadDataSpread: LOAD DATA LOCAL INFILE into tables spread over three shards. A
// sharded table's file is split by shard key as MariaDB reads it: the shards together hold
// what one MariaDB loading the same file holds (same rows, same affected count and
// warnings), each shard exactly the rows a plain INSERT of them routes there. A broadcast
// table's file reaches every shard whole. A row that fails on one shard, a key with no slot,
// a client gone mid-file, a KILL or a deadline loads nothing anywhere; a 30 MB file streams with flat
// proxy memory.
func testLoadDataSpread(t *testing.T, e *env) {
	lds := dbMap{Logical: "lds", Physical: "lds_0"}
	cfg := e.config(t, lds)
	e.rootExec(t, "CREATE DATABASE IF NOT EXISTS lds_1", "CREATE DATABASE IF NOT EXISTS lds_2", "CREATE DATABASE IF NOT EXISTS lds_ref")
	cfg.Shards = append(cfg.Shards, shardConfig{Name: "s1", Primary: "b0", Database: "lds_1"}, shardConfig{Name: "s2", Primary: "b0", Database: "lds_2"})
	cfg.Schemes = []map[string]any{{"name": "by_id", "function": "hash", "slots": 3, "shards": []string{"s0", "s1", "s2"}}}
	cfg.Databases[0].Tables = []map[string]any{
		{"name": "pts", "kind": "sharded", "key": "id", "scheme": "by_id"},
		{"name": "pts_ins", "kind": "sharded", "key": "id", "scheme": "by_id"},
		{"name": "blobs", "kind": "sharded", "key": "id", "scheme": "by_id"},
		{"name": "ref", "kind": "broadcast"},
		{"name": "words", "kind": "sharded", "key": "w", "scheme": "by_id"},
		{"name": "words_ins", "kind": "sharded", "key": "w", "scheme": "by_id"},
	}
	e.backendUser(t, cfg, "px_lds")
	p := startProxy(t, cfg)
	shards := []*sql.DB{e.direct(t, "lds_0"), e.direct(t, "lds_1"), e.direct(t, "lds_2")}
	refDB := e.direct(t, "lds_ref", "allowAllFiles=true")
	const ptsDDL = "CREATE TABLE IF NOT EXISTS %s (id INT PRIMARY KEY, name VARCHAR(60), qty INT, note VARCHAR(40)) ENGINE=InnoDB"
	// A bad quantity is refused by a trigger (LOCAL reads bad values as warnings): the way
	// to make one shard's part fail.
	const trigger = "CREATE OR REPLACE TRIGGER pts_qty BEFORE INSERT ON pts FOR EACH ROW IF NEW.qty < 0 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'negative qty'; END IF"
	for _, q := range append([]*sql.DB{refDB}, shards...) {
		mustExec(t, q, fmt.Sprintf(ptsDDL, "pts"), fmt.Sprintf(ptsDDL, "pts_ins"), trigger,
			"CREATE TABLE IF NOT EXISTS ref (id INT PRIMARY KEY, name VARCHAR(40)) ENGINE=InnoDB",
			"CREATE TABLE IF NOT EXISTS blobs (id INT PRIMARY KEY, body MEDIUMTEXT NOT NULL) ENGINE=InnoDB",
			"CREATE TABLE IF NOT EXISTS words (w VARCHAR(20) CHARACTER SET utf8mb4 PRIMARY KEY, n INT) ENGINE=InnoDB",
			"CREATE TABLE IF NOT EXISTS words_ins LIKE words",
			"DELETE FROM pts", "DELETE FROM pts_ins", "DELETE FROM ref", "DELETE FROM blobs", "DELETE FROM words", "DELETE FROM words_ins")
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	db := p.open(t, appUser, appPass, lds.Logical, "allowAllFiles=true")
	count := func(q querier, table string) string { return queryString(t, q, "SELECT COUNT(*) FROM "+table) }
	nothingAnywhere := func(t *testing.T, what string) {
		t.Helper()
		for i, q := range shards {
			if n := count(q, "pts"); n != "0" {
				t.Errorf("%s: shard %d holds %s rows", what, i, n)
			}
		}
		if v := queryString(t, db, "SELECT 'still here'"); v != "still here" {
			t.Errorf("%s: the connection reads %q", what, v)
		}
	}

	// Enclosures, escapes, a field holding the line terminator, multi-byte text, CRLF, a
	// header line, rows with too few and too many fields, a key with a leading space, a
	// last line without its terminator, a @variable with SET.
	var b strings.Builder
	b.WriteString("id,name,qty,note\r\n")
	b.WriteString("1,\"apple, red\",3,plain\r\n")
	b.WriteString("2,\"multi\r\nline \"\"quoted\"\"\",5,\"x\"\r\n")
	b.WriteString("3,esc\\,aped\\\\ back,7,tab\\there\r\n")
	b.WriteString("4,plum ✓ 日本,9,\\N\r\n")
	b.WriteString("5,short\r\n")
	b.WriteString("6,extra,1,n,surplus\r\n")
	b.WriteString("7,\"é\",2,\"NULL\"\r\n")
	b.WriteString(" 8,space key,1,k\r\n")
	for i := 9; i < 40; i++ {
		fmt.Fprintf(&b, "%d,row %d,%d,n%d\r\n", i, i, i%7, i)
	}
	b.WriteString("40,last,4,final")
	tricky := write("tricky.csv", b.String())
	const opts = ` FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '"' ESCAPED BY '\\' LINES TERMINATED BY '\r\n' IGNORE 1 LINES (id, name, @q, note) SET qty = @q * 2`
	loadStmt := func(file, table string) string {
		return fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE %s", file, table) + opts
	}
	type loaded struct {
		affected int64
		warnings []string // level and code of each warning, sorted
	}
	load := func(t *testing.T, q *sql.DB, sqlText string) loaded {
		t.Helper()
		conn := dedicatedConn(t, q)
		res, err := conn.ExecContext(t.Context(), sqlText)
		if err != nil {
			t.Fatalf("%s: %v", sqlText, err)
		}
		var out loaded
		out.affected, _ = res.RowsAffected()
		for _, w := range query(t, conn, "SHOW WARNINGS").Rows {
			out.warnings = append(out.warnings, text(w[0])+" "+text(w[1]))
		}
		slices.Sort(out.warnings)
		return out
	}

	t.Run("ShardedLikeOneServerAndInsert", func(t *testing.T) {
		want := load(t, refDB, loadStmt(tricky, "pts"))
		got := load(t, db, loadStmt(tricky, "pts"))
		if got.affected != want.affected || fmt.Sprint(got.warnings) != fmt.Sprint(want.warnings) {
			t.Errorf("through the proxy: %d rows, warnings %v; one MariaDB: %d rows, warnings %v", got.affected, got.warnings, want.affected, want.warnings)
		}
		if want.affected != 40 || len(want.warnings) == 0 {
			t.Fatalf("the reference load gave %d rows and warnings %v: the file does not test what it should", want.affected, want.warnings)
		}
		wantRows := rowsText(query(t, refDB, "SELECT id, name, qty, note FROM pts ORDER BY id"))
		union := "SELECT id, name, qty, note FROM lds_0.pts UNION ALL SELECT id, name, qty, note FROM lds_1.pts UNION ALL SELECT id, name, qty, note FROM lds_2.pts ORDER BY id"
		if gotRows := rowsText(query(t, shards[0], union)); gotRows != wantRows {
			t.Errorf("the shards hold\n%s\none MariaDB holds\n%s", gotRows, wantRows)
		}
		// The same rows by INSERT through the proxy land on the same shards.
		var vals []string
		for _, r := range query(t, refDB, "SELECT id FROM pts ORDER BY id").Rows {
			vals = append(vals, "("+text(r[0])+")")
		}
		mustExec(t, db, "INSERT INTO pts_ins (id) VALUES "+strings.Join(vals, ","))
		for i, q := range shards {
			loadedIDs, insertedIDs := rowsText(query(t, q, "SELECT id FROM pts ORDER BY id")), rowsText(query(t, q, "SELECT id FROM pts_ins ORDER BY id"))
			if loadedIDs != insertedIDs {
				t.Errorf("shard %d: loaded %s, inserted %s", i, loadedIDs, insertedIDs)
			}
			if loadedIDs == "[]" {
				t.Errorf("shard %d got no row: the file is not spread", i)
			}
		}
	})

	t.Run("Latin1TextKeys", func(t *testing.T) {
		// Text keys in a latin1 file land where an INSERT of the same text (utf8mb4 from the
		// driver) sends them: the proxy reads the key in the file's character set.
		words := []string{"café", "naïve", "über", "Ærø", "plain", "zoë", "ñandú", "façade", "smörgås", "crème",
			"déjà", "piñata", "jalapeño", "Ångström", "rosé", "fiancée", "señor", "Øl", "niño", "glöm"}
		var file []byte
		var vals []string
		for i, w := range words {
			for _, r := range w {
				file = append(file, byte(r)) // every rune of these words is below U+0100: its latin1 byte
			}
			file = append(file, fmt.Sprintf("\t%d\n", i)...)
			vals = append(vals, fmt.Sprintf("('%s', %d)", w, i))
		}
		res, err := db.Exec(fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE words CHARACTER SET latin1", write("latin1.tsv", string(file))))
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != int64(len(words)) {
			t.Errorf("rows affected %d, want %d", n, len(words))
		}
		mustExec(t, db, "INSERT INTO words_ins (w, n) VALUES "+strings.Join(vals, ","))
		spread := 0
		for i, q := range shards {
			loaded, inserted := rowsText(query(t, q, "SELECT w, n FROM words ORDER BY n")), rowsText(query(t, q, "SELECT w, n FROM words_ins ORDER BY n"))
			if loaded != inserted {
				t.Errorf("shard %d: loaded %s, inserted %s", i, loaded, inserted)
			}
			if loaded != "[]" {
				spread++
			}
		}
		if spread < 2 {
			t.Errorf("the words fell on %d shard(s): the test does not test placement", spread)
		}
	})

	t.Run("InfoString", func(t *testing.T) {
		// MariaDB's OK info, summed over the shards: REPLACE of the rows loaded above.
		rc := connectRawLocal(t, p.Addr, lds.Logical)
		content := "1,a\n2,b\n3,c\n77,new\n"
		ok := rawLoad(t, rc, "LOAD DATA LOCAL INFILE 'r.csv' REPLACE INTO TABLE pts FIELDS TERMINATED BY ',' (id, name)", content)
		if ok[0] != 0x00 {
			t.Fatalf("answer %q, want OK", ok)
		}
		affected, _, _ := parseOK(ok)
		if info := okInfo(ok); affected != 7 || info != "Records: 4  Deleted: 3  Skipped: 0  Warnings: 0" {
			t.Errorf("affected %d, info %q; want 7, %q", affected, info, "Records: 4  Deleted: 3  Skipped: 0  Warnings: 0")
		}
		mustExec(t, db, "DELETE FROM pts WHERE id = 77")
	})

	for _, q := range shards {
		mustExec(t, q, "DELETE FROM pts")
	}

	t.Run("Broadcast", func(t *testing.T) {
		file := write("ref.csv", "id\tname\n1\tone\n2\ttwo ✓\n3\tthree\n")
		res, err := db.Exec(fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE ref IGNORE 1 LINES", file))
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 3 {
			t.Errorf("rows affected %d, want 3 (one copy's)", n)
		}
		for i, q := range shards {
			if got := rowsText(query(t, q, "SELECT id, name FROM ref ORDER BY id")); got != "[[1 one] [2 two ✓] [3 three]]" {
				t.Errorf("shard %d holds %s", i, got)
			}
		}
		// A duplicate on one copy only (REPLACE-less LOCAL reads it as a warning), so a
		// trigger fails one shard: no copy keeps the row.
		mustExec(t, shards[2], "CREATE OR REPLACE TRIGGER ref_no9 BEFORE INSERT ON ref FOR EACH ROW IF NEW.id = 9 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no 9 here'; END IF")
		t.Cleanup(func() { mustExec(t, shards[2], "DROP TRIGGER IF EXISTS ref_no9") })
		_, err = db.Exec(fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE ref", write("ref9.csv", "8\teight\n9\tnine\n")))
		wantError(t, err, 1644, "45000")
		for i, q := range shards {
			if n := queryString(t, q, "SELECT COUNT(*) FROM ref WHERE id >= 8"); n != "0" {
				t.Errorf("shard %d kept %s rows of the failed load", i, n)
			}
		}
	})

	t.Run("OneShardFailsNothingKept", func(t *testing.T) {
		var b strings.Builder
		for i := 100; i < 400; i++ {
			qty := 1
			if i == 350 {
				qty = -1
			}
			fmt.Fprintf(&b, "%d,n%d,%d\n", i, i, qty)
		}
		_, err := db.Exec(fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE pts FIELDS TERMINATED BY ',' (id, name, qty)", write("neg.csv", b.String())))
		wantError(t, err, 1644, "45000")
		nothingAnywhere(t, "a row failing on one shard")
	})

	t.Run("UnroutableKey", func(t *testing.T) {
		_, err := db.Exec(fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE pts FIELDS TERMINATED BY ',' (id, name)", write("null.csv", "1,a\n2,b\n\\N,nokey\n4,d\n")))
		wantError(t, err, 1048, "23000")
		if err != nil && !strings.Contains(err.Error(), "row 3") {
			t.Errorf("the error does not name the row: %v", err)
		}
		nothingAnywhere(t, "a key with no slot")
	})

	t.Run("Refused", func(t *testing.T) {
		file := write("one.csv", "1,a\n")
		for stmt, why := range map[string]string{
			"LOAD DATA LOCAL INFILE '%s' INTO TABLE pts FIELDS TERMINATED BY ',' (@i, name) SET id = @i":   "SET clause",
			"LOAD DATA LOCAL INFILE '%s' INTO TABLE pts FIELDS TERMINATED BY ',' (name, qty)":              "without its shard key",
			"LOAD DATA LOCAL INFILE '%s' INTO TABLE pts CHARACTER SET gbk FIELDS TERMINATED BY ','":        "CHARACTER SET gbk",
			"LOAD DATA LOCAL INFILE '%s' INTO TABLE pts FIELDS TERMINATED BY '' ENCLOSED BY '' (id, name)": "fixed-width",
		} {
			_, err := db.Exec(fmt.Sprintf(stmt, file))
			wantError(t, err, 1235, "42000")
			if err != nil && !strings.Contains(err.Error(), why) {
				t.Errorf("%s: %v, want the reason %q", stmt, err, why)
			}
		}
		nothingAnywhere(t, "refused loads")
	})

	t.Run("InTransaction", func(t *testing.T) {
		conn := dedicatedConn(t, db)
		mustExec(t, conn, "BEGIN", "INSERT INTO pts (id, name) VALUES (1, 'in txn')")
		_, err := conn.ExecContext(t.Context(), fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE pts FIELDS TERMINATED BY ',' (id, name)", write("txn.csv", "1,a\n2,b\n3,c\n")))
		wantError(t, err, 1235, "42000")
		mustExec(t, conn, "ROLLBACK")
		nothingAnywhere(t, "a load inside a transaction")
	})

	t.Run("ClientGoneMidFile", func(t *testing.T) {
		rc := connectRawLocal(t, p.Addr, lds.Logical)
		if err := rc.command(comQuery, []byte("LOAD DATA LOCAL INFILE 'part.csv' INTO TABLE pts FIELDS TERMINATED BY ','")); err != nil {
			t.Fatal(err)
		}
		if req, err := rc.readPacket(); err != nil || string(req) != "\xfbpart.csv" {
			t.Fatalf("LOCAL INFILE request %q, %v; want 0xFB and the file name", req, err)
		}
		var b strings.Builder
		for i := range 5000 { // more than the proxy queues: every shard is loading
			fmt.Fprintf(&b, "%d,gone\n", i)
		}
		if err := rc.writePacket([]byte(b.String())); err != nil {
			t.Fatal(err)
		}
		waitRunning(t, e, "px_lds", "LOAD DATA%")
		_ = rc.nc.Close()
		wantNothingRunning(t, e, "px_lds", "LOAD DATA%", 10*time.Second)
		nothingAnywhere(t, "a client gone mid-file")
	})

	// The client's file stalls mid-way while a KILL QUERY through the proxy, or the
	// session's max_execution_time, interrupts the load: the client gets 1317 or 3024 once
	// its file is sent; nothing is kept.
	for _, tc := range []struct {
		name, setup string
		interrupt   func(t *testing.T, connID string)
		code        uint16
		state       string
	}{
		{"Killed", "SET SESSION max_execution_time = 0", func(t *testing.T, id string) { mustExec(t, db, "KILL QUERY "+id) }, 1317, "70100"},
		{"Deadline", "SET SESSION max_execution_time = 2000", func(t *testing.T, _ string) {
			wantNothingRunning(t, e, "px_lds", "LOAD DATA%", 30*time.Second) // the deadline stopped the shards' loads
		}, 3024, "HY000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stall, resume := make(chan struct{}), make(chan struct{})
			reader := "ldstall" + tc.name
			mysql.RegisterReaderHandler(reader, func() io.Reader {
				pr, pw := io.Pipe()
				go func() {
					for i := range 3000 {
						if i == 1500 {
							close(stall)
							<-resume
						}
						if _, err := fmt.Fprintf(pw, "%d,k\n", i); err != nil {
							return
						}
					}
					_ = pw.Close()
				}()
				return pr
			})
			t.Cleanup(func() { mysql.DeregisterReaderHandler(reader) })
			conn := dedicatedConn(t, db)
			mustExec(t, conn, tc.setup)
			id := queryString(t, conn, "SELECT CONNECTION_ID()")
			errc := make(chan error, 1)
			go func() {
				_, err := conn.ExecContext(context.Background(), "LOAD DATA LOCAL INFILE 'Reader::"+reader+"' INTO TABLE pts FIELDS TERMINATED BY ','")
				errc <- err
			}()
			select {
			case <-stall:
			case err := <-errc:
				close(resume)
				t.Fatalf("the load ended before its file stalled: %v", err)
			case <-time.After(time.Minute):
				close(resume)
				t.Fatal("the client's file was not asked for")
			}
			waitRunning(t, e, "px_lds", "LOAD DATA%") // every shard waits for its part
			tc.interrupt(t, id)
			close(resume)
			select {
			case err := <-errc:
				wantError(t, err, tc.code, tc.state)
			case <-time.After(time.Minute):
				t.Fatal("the interrupted load did not end")
			}
			wantNothingRunning(t, e, "px_lds", "LOAD DATA%", 10*time.Second)
			nothingAnywhere(t, "an interrupted load")
			mustExec(t, conn, "SET SESSION max_execution_time = 0")
		})
	}

	t.Run("StreamedLargeFile", func(t *testing.T) {
		// 3,000 rows of 10 KB (~30 MB) from a reader, split over three shards as the file
		// comes: the proxy's peak RSS (VmHWM, reset first) grows by far less than the file.
		const rows = 3000
		body := strings.Repeat("0123456789", 1024)
		res := loadMeasured(t, p, dedicatedConn(t, db), "ldsbig", "blobs", rows, body, "split over 3 shards")
		if n, _ := res.RowsAffected(); n != rows {
			t.Errorf("rows affected %d, want %d", n, rows)
		}
		total := 0
		for i, q := range shards {
			var n, bytes int
			if err := q.QueryRow("SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM blobs").Scan(&n, &bytes); err != nil {
				t.Fatal(err)
			}
			if n == 0 || bytes != n*len(body) {
				t.Errorf("shard %d: %d rows of %d bytes in all", i, n, bytes)
			}
			total += n
		}
		if total != rows {
			t.Errorf("the shards hold %d rows, want %d", total, rows)
		}
	})
}

// loadMeasured loads rows rows of "<n>,<body>" from a reader named name into table on conn,
// and fails the test when the proxy's peak RSS (VmHWM, reset first) grows by more than 16 MB
// meanwhile: the file must stream, not be buffered.
func loadMeasured(t *testing.T, p *proxy, conn *sql.Conn, name, table string, rows int, body, how string) sql.Result {
	t.Helper()
	mysql.RegisterReaderHandler(name, func() io.Reader {
		pr, pw := io.Pipe()
		go func() {
			for i := range rows {
				if _, err := fmt.Fprintf(pw, "%d,%s\n", i, body); err != nil {
					return
				}
			}
			_ = pw.Close()
		}()
		return pr
	})
	t.Cleanup(func() { mysql.DeregisterReaderHandler(name) })
	mustExec(t, conn, "SELECT 1")
	pid := p.cmd.Process.Pid
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatalf("resetting the proxy's peak RSS: %v", err)
	}
	before := procStatusKB(t, pid, "VmRSS")
	start := time.Now()
	res, err := conn.ExecContext(t.Context(), fmt.Sprintf("LOAD DATA LOCAL INFILE 'Reader::%s' INTO TABLE %s FIELDS TERMINATED BY ','", name, table))
	if err != nil {
		t.Fatalf("LOAD DATA LOCAL of %d rows: %v", rows, err)
	}
	took := time.Since(start)
	peak := procStatusKB(t, pid, "VmHWM")
	t.Logf("%d rows (%d MB) %s in %v; proxy RSS %.1f MB before, peak %.1f MB during the load", rows, rows*len(body)>>20, how, took.Round(time.Millisecond), float64(before)/1024, float64(peak)/1024)
	if growth := peak - before; growth > 16*1024 {
		t.Errorf("the proxy's RSS grew by %d KB during the load: the file is being buffered", growth)
	}
	return res
}

// connectRawLocal logs in to the proxy offering CLIENT_LOCAL_FILES.
func connectRawLocal(t *testing.T, addr, db string) *rawConn {
	t.Helper()
	rc := dialRaw(t, addr)
	if err := rc.readGreeting(); err != nil {
		t.Fatal(err)
	}
	if err := rc.login(appUser, appPass, db, 0x80); err != nil { // CLIENT_LOCAL_FILES
		t.Fatal(err)
	}
	return rc
}

// rawLoad sends a LOAD DATA LOCAL and, when asked for the file, content and its end; it
// returns the final OK or ERR packet.
func rawLoad(t *testing.T, rc *rawConn, stmt, content string) []byte {
	t.Helper()
	if err := rc.command(comQuery, []byte(stmt)); err != nil {
		t.Fatal(err)
	}
	req, err := rc.readPacket()
	if err != nil || len(req) == 0 || req[0] != 0xfb {
		t.Fatalf("LOCAL INFILE request %q, %v", req, err)
	}
	if err := rc.writePacket([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := rc.writePacket(nil); err != nil {
		t.Fatal(err)
	}
	ans, err := rc.readPacket()
	if err != nil || len(ans) == 0 {
		t.Fatalf("answer to the file: %q, %v", ans, err)
	}
	return ans
}

// okInfo is the human-readable info at the end of an OK packet (no session tracking).
func okInfo(p []byte) string {
	r := p[1:]
	for range 2 { // affected rows, last insert id
		_, n := lenencInt(r)
		r = r[n:]
	}
	if len(r) < 4 {
		return ""
	}
	s, _, _ := lenencString(r[4:]) // after the status and warnings, length-encoded as MariaDB writes it
	return string(s)
}
