package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// testBinaryProtocol is the regression suite for go-mysql's binary-protocol defects (see
// DEPENDENCIES.md): integer widths, re-executed statements, large values.
func testBinaryProtocol(t *testing.T, e *env) {
	m := dbMap{Logical: "bin", Physical: "bin_phys"}
	cfg := e.config(t, m)
	cfg.Server["max_allowed_packet"] = "64MB"
	p := startProxy(t, cfg)
	db := p.open(t, appUser, appPass, m.Logical) // server-side prepared statements
	direct := e.direct(t, m.Physical)

	t.Run("SmallIntegers", func(t *testing.T) {
		mustExec(t, db, "DROP TABLE IF EXISTS ints", `CREATE TABLE ints (id INT PRIMARY KEY,
			t TINYINT, ut TINYINT UNSIGNED, s SMALLINT, us SMALLINT UNSIGNED, m MEDIUMINT, um MEDIUMINT UNSIGNED,
			i INT, ui INT UNSIGNED, b BIGINT, ub BIGINT UNSIGNED, y YEAR, f FLOAT, d DOUBLE, bo BOOL)`)
		rows := [][]string{
			{"1", "-128", "0", "-32768", "0", "-8388608", "0", "-2147483648", "0", "-9223372036854775808", "0", "1901", "-3.5", "-1e308", "0"},
			{"2", "127", "255", "32767", "65535", "8388607", "16777215", "2147483647", "4294967295", "9223372036854775807", "18446744073709551615", "2155", "3.5", "1e308", "1"},
			{"3", "-1", "1", "-1", "1", "-1", "1", "-1", "1", "-1", "1", "2000", "0", "0", "1"},
			{"4", "0", "128", "256", "32768", "65536", "8388608", "16777216", "2147483648", "4294967296", "9223372036854775808", "1999", "1", "-0.5", "0"},
		}
		for _, r := range rows {
			mustExec(t, direct, "INSERT INTO ints VALUES ("+strings.Join(r, ", ")+")")
		}
		for _, r := range rows {
			got := query(t, db, "SELECT t, ut, s, us, m, um, i, ui, b, ub, y, f, d, bo FROM ints WHERE id = ?", r[0])
			if len(got.Rows) != 1 {
				t.Fatalf("id %s: %d rows", r[0], len(got.Rows))
			}
			for j, v := range got.Rows[0] {
				want := r[j+1]
				if g := text(v); g != want && !floatEqual(g, want) {
					t.Errorf("id %s column %s: binary protocol gave %T %s, want %s", r[0], got.Columns[j], v, g, want)
				}
			}
			sameResult(t, "ints id "+r[0],
				got, query(t, direct, "SELECT t, ut, s, us, m, um, i, ui, b, ub, y, f, d, bo FROM ints WHERE id = ?", r[0]))
		}
		// Integers as parameters, each width the driver can send.
		for _, arg := range []any{int64(-128), int64(255), int64(-32768), int64(65535), int64(math.MinInt64), uint64(math.MaxUint64), true, float32(0.25), -1e-300} {
			got := queryString(t, db, "SELECT ?", arg)
			want := queryString(t, direct, "SELECT ?", arg)
			if got != want {
				t.Errorf("SELECT ? with %T %v: proxy %s, MariaDB %s", arg, arg, got, want)
			}
		}
	})

	t.Run("ReExecutedStatement", func(t *testing.T) {
		mustExec(t, db, "DROP TABLE IF EXISTS reexec", "CREATE TABLE reexec (id INT PRIMARY KEY, s VARCHAR(50), n BIGINT, b VARBINARY(20))")
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ins, err := conn.PrepareContext(context.Background(), "INSERT INTO reexec (id, s, n, b) VALUES (?, ?, ?, ?)")
		if err != nil {
			t.Fatal(err)
		}
		defer ins.Close()
		sel, err := conn.PrepareContext(context.Background(), "SELECT s, n, b, ? + 0 FROM reexec WHERE id = ?")
		if err != nil {
			t.Fatal(err)
		}
		defer sel.Close()
		for i := range 100 {
			var s, n, b any = fmt.Sprintf("row %d ✓", i), int64(i) * 1_000_000_007, []byte{byte(i), 0, 0xff}
			if i%10 == 3 {
				s, n, b = nil, nil, nil // NULLs change the parameter types between executions
			}
			if _, err := ins.ExecContext(context.Background(), i, s, n, b); err != nil {
				t.Fatalf("execution %d: %v", i, err)
			}
			var gs, gn, gb, gx any
			if err := sel.QueryRowContext(context.Background(), i*3, i).Scan(&gs, &gn, &gb, &gx); err != nil {
				t.Fatalf("select %d: %v", i, err)
			}
			if text(gs) != text(s) || text(gn) != text(n) || !bytes.Equal(asBytes(gb), asBytes(b)) || text(gx) != fmt.Sprint(i*3) {
				t.Errorf("execution %d: got (%s, %s, %x, %s), want (%s, %s, %x, %d)", i, text(gs), text(gn), gb, text(gx), text(s), text(n), b, i*3)
			}
		}
		if n := queryString(t, direct, "SELECT COUNT(*) FROM reexec"); n != "100" {
			t.Errorf("%s rows stored, want 100", n)
		}
	})

	t.Run("ReExecuteWithoutTypes", func(t *testing.T) {
		// Connector/C and Connector/J send parameter types only on the first execution
		// (new_params_bound_flag = 0 afterwards); the proxy must use the new values with the
		// remembered types.
		c := connectRaw(t, p.Addr, appUser, appPass, m.Logical)
		id, n, err := c.prepare("SELECT ? + 1, CONCAT(?, '!')")
		if err != nil || n != 2 {
			t.Fatalf("prepare: %d params, %v", n, err)
		}
		types := []byte{typeLongLong, 0, typeVarStr, 0}
		for i, v := range []struct {
			n    int64
			s    string
			bind bool
		}{{41, "first", true}, {99, "second", false}, {-7, "third ✓", false}, {1 << 40, "fourth", true}, {0, "", false}} {
			vals := binary.LittleEndian.AppendUint64(nil, uint64(v.n))
			vals = appendLenencString(vals, []byte(v.s))
			ts := types
			if !v.bind {
				ts = nil
			}
			if err := c.command(comStmtExecute, execPayload(id, []byte{0}, ts, vals)); err != nil {
				t.Fatal(err)
			}
			r, err := c.readResult()
			if err != nil {
				t.Fatalf("execution %d (types sent: %v): %v", i, v.bind, err)
			}
			if len(r.Rows) != 1 {
				t.Fatalf("execution %d: %d rows", i, len(r.Rows))
			}
			// Binary row: header 0x00, NULL bitmap (1 byte for 2 columns), BIGINT, string.
			row := r.Rows[0]
			gotN := int64(binary.LittleEndian.Uint64(row[2:]))
			gotS, _, _ := lenencString(row[10:])
			if gotN != v.n+1 || string(gotS) != v.s+"!" {
				t.Errorf("execution %d (types sent: %v): got (%d, %q), want (%d, %q)", i, v.bind, gotN, gotS, v.n+1, v.s+"!")
			}
		}
	})

	t.Run("ManyStatements", func(t *testing.T) {
		// More statements than the proxy caches per backend connection (wire.MaxStmts):
		// evicted ones are prepared again when executed, and MariaDB's count of prepared
		// statements stays bounded.
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var stmts []*sql.Stmt
		for i := range 300 {
			st, err := conn.PrepareContext(context.Background(), fmt.Sprintf("SELECT ? + %d", i))
			if err != nil {
				t.Fatalf("prepare %d: %v", i, err)
			}
			defer st.Close()
			stmts = append(stmts, st)
		}
		for round := range 2 {
			for i, st := range stmts {
				var v int
				if err := st.QueryRowContext(context.Background(), 1000).Scan(&v); err != nil {
					t.Fatalf("round %d: execute %d: %v", round, i, err)
				}
				if v != 1000+i {
					t.Fatalf("round %d: statement %d answered %d, want %d", round, i, v, 1000+i)
				}
			}
		}
		for i := range 1000 { // prepared and closed by the driver each time
			if v := queryString(t, db, fmt.Sprintf("SELECT ? * %d", i), 2); v != fmt.Sprint(2*i) {
				t.Fatalf("one-shot statement %d: %s", i, v)
			}
		}
		var name string
		var count int
		if err := e.root.QueryRow("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'").Scan(&name, &count); err != nil {
			t.Fatal(err)
		}
		if count > 20*256 {
			t.Errorf("MariaDB holds %d prepared statements", count)
		}
	})

	t.Run("PacketsAbove16MiB", func(t *testing.T) {
		// MariaDB must accept them too; only connections opened afterwards see the change.
		var old int
		if err := e.root.QueryRow("SELECT @@global.max_allowed_packet").Scan(&old); err != nil {
			t.Fatal(err)
		}
		e.rootExec(t, "SET GLOBAL max_allowed_packet = 67108864")
		t.Cleanup(func() { e.rootExec(t, fmt.Sprintf("SET GLOBAL max_allowed_packet = %d", old)) })
		big := startProxy(t, cfg)
		mustExec(t, db, "DROP TABLE IF EXISTS huge", "CREATE TABLE huge (id INT PRIMARY KEY, b LONGBLOB)")
		directBig := e.direct(t, m.Physical)
		data := randomBytes(20<<20, 4)
		for i, mode := range driverModes {
			h := big.open(t, appUser, appPass, m.Logical, mode.params...)
			if _, err := h.ExecContext(context.Background(), "INSERT INTO huge VALUES (?, ?)", i, data); err != nil {
				t.Fatalf("%s: 20 MiB INSERT: %v", mode.name, err)
			}
			if got := queryString(t, directBig, "SELECT MD5(b) FROM huge WHERE id = ?", i); got != md5hex(data) {
				t.Errorf("%s: MariaDB stored MD5 %s, want %s", mode.name, got, md5hex(data))
			}
			for _, q := range []string{"SELECT b FROM huge WHERE id = " + fmt.Sprint(i), "SELECT b FROM huge WHERE id = ?"} {
				var args []any
				if strings.Contains(q, "?") {
					args = []any{i}
				}
				r := query(t, h, q, args...)
				if len(r.Rows) != 1 || !bytes.Equal(asBytes(r.Rows[0][0]), data) {
					t.Errorf("%s: %q: the 20 MiB blob read through the proxy differs", mode.name, q)
				}
			}
			if v := queryString(t, h, "SELECT LENGTH(REPEAT(?, 9 * 1024 * 1024))", "xy"); v != fmt.Sprint(18<<20) {
				t.Errorf("%s: LENGTH(REPEAT) = %s", mode.name, v)
			}
			// Exactly 0xffffff bytes: the packet is followed by an empty one.
			const maxPayload = 1<<24 - 1
			q := "SELECT LENGTH('" // COM_QUERY payload: the command byte, then the query
			q += strings.Repeat("z", maxPayload-1-len(q)-2) + "')"
			if v := queryString(t, h, q); v != fmt.Sprint(maxPayload-1-len("SELECT LENGTH('')")) {
				t.Errorf("%s: a query of exactly 0xffffff bytes: LENGTH = %s", mode.name, v)
			}
			// A text row of exactly 0xffffff bytes: a 4-byte length, then the value.
			r := query(t, h, "SELECT REPEAT('w', ?)", maxPayload-4)
			if len(r.Rows) != 1 || len(asBytes(r.Rows[0][0])) != maxPayload-4 {
				t.Errorf("%s: a row of exactly 0xffffff bytes did not come through", mode.name)
			}
			r = query(t, h, "SELECT REPEAT('w', "+fmt.Sprint(maxPayload-4)+")")
			if len(r.Rows) != 1 || len(asBytes(r.Rows[0][0])) != maxPayload-4 {
				t.Errorf("%s: a text row of exactly 0xffffff bytes did not come through", mode.name)
			}
		}
	})

	t.Run("LargeBlob", func(t *testing.T) {
		mustExec(t, db, "DROP TABLE IF EXISTS blobs", "CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB)")
		big := randomBytes(3<<20, 1)
		interp := p.open(t, appUser, appPass, m.Logical, "interpolateParams=true")
		for i, h := range []struct {
			name string
			q    querier
		}{{"prepared", db}, {"interpolated", interp}} {
			data := append([]byte{byte(i)}, big...)
			if _, err := h.q.ExecContext(context.Background(), "INSERT INTO blobs VALUES (?, ?)", i, data); err != nil {
				t.Fatalf("%s INSERT of %d bytes: %v", h.name, len(data), err)
			}
			if got := queryString(t, direct, "SELECT MD5(b) FROM blobs WHERE id = ?", i); got != md5hex(data) {
				t.Errorf("%s INSERT: MariaDB stored a blob with MD5 %s, want %s", h.name, got, md5hex(data))
			}
			r := query(t, h.q, "SELECT b FROM blobs WHERE id = ?", i)
			if len(r.Rows) != 1 || !bytes.Equal(asBytes(r.Rows[0][0]), data) {
				t.Errorf("%s SELECT: the blob read through the proxy differs from the one written", h.name)
			}
		}
	})
}

// testLongData is the regression test for COM_STMT_SEND_LONG_DATA, which go-mysql's server
// ignores at execution (DEPENDENCIES.md).
func testLongData(t *testing.T, e *env) {
	m := dbMap{Logical: "ld", Physical: "ld"}
	cfg := e.config(t, m)
	cfg.Server["max_allowed_packet"] = "64MB"
	p := startProxy(t, cfg)
	direct := e.direct(t, m.Physical)
	db := p.open(t, appUser, appPass, m.Logical)
	mustExec(t, db, "CREATE TABLE ld (id INT PRIMARY KEY, b LONGBLOB, note VARCHAR(20), t MEDIUMTEXT)")

	t.Run("GoSQLDriver", func(t *testing.T) {
		// go-sql-driver sends a []byte or string argument as long data when it is at least
		// maxAllowedPacket / (parameters + 1) bytes long (packets.go, writeExecutePacket):
		// with maxAllowedPacket=65536 and 4 parameters, from 13107 bytes on.
		small := p.open(t, appUser, appPass, m.Logical, "maxAllowedPacket=65536")
		conn, err := small.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		stmt, err := conn.PrepareContext(context.Background(), "INSERT INTO ld (id, b, note, t) VALUES (?, ?, ?, ?)")
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close()
		longText := strings.Repeat("long data ✓ 😀 ", 10_000)
		cases := []struct {
			b    []byte
			note string
			t    string
		}{
			{randomBytes(3<<20, 2), "both long", longText},
			{[]byte{0x00, 0xff, 0x01}, "inline", "short ✓"},      // the same statement, no long data now
			{randomBytes(20_000, 3), "blob long", "short again"}, // only the second parameter
			{nil, "null blob", strings.Repeat("x✓", 5_000)},      // only the fourth
		}
		for i, c := range cases {
			if _, err := stmt.ExecContext(context.Background(), i, c.b, c.note, c.t); err != nil {
				t.Fatalf("case %d (%s): %v", i, c.note, err)
			}
		}
		for i, c := range cases {
			r := query(t, direct, "SELECT b, note, t FROM ld WHERE id = ?", i)
			if len(r.Rows) != 1 {
				t.Fatalf("case %d (%s): not stored", i, c.note)
			}
			got := r.Rows[0]
			if !bytes.Equal(asBytes(got[0]), c.b) || (c.b == nil) != (got[0] == nil) {
				t.Errorf("case %d (%s): blob stored as %s, want %s", i, c.note, short(got[0]), short(c.b))
			}
			if text(got[1]) != c.note || text(got[2]) != c.t {
				t.Errorf("case %d (%s): stored note %q, text %s; want %q, %s", i, c.note, text(got[1]), short(got[2]), c.note, short(c.t))
			}
		}
	})

	t.Run("RawChunksAndReset", func(t *testing.T) {
		c := connectRaw(t, p.Addr, appUser, appPass, m.Logical)
		id, n, err := c.prepare("INSERT INTO ld (id, b, note) VALUES (?, ?, ?)")
		if err != nil || n != 3 {
			t.Fatalf("prepare: %d params, %v", n, err)
		}
		longData := func(param uint16, chunk []byte) {
			t.Helper()
			b := binary.LittleEndian.AppendUint32(nil, id)
			b = binary.LittleEndian.AppendUint16(b, param)
			if err := c.command(comStmtSendLong, append(b, chunk...)); err != nil {
				t.Fatal(err)
			}
		}
		execute := func(rowID int32, blob, note []byte) error {
			t.Helper()
			types := []byte{typeLong, 0, typeBlob, 0, typeVarStr, 0}
			vals := binary.LittleEndian.AppendUint32(nil, uint32(rowID))
			if blob != nil {
				vals = appendLenencString(vals, blob)
			}
			if note != nil {
				vals = appendLenencString(vals, note)
			}
			if err := c.command(comStmtExecute, execPayload(id, []byte{0}, types, vals)); err != nil {
				t.Fatal(err)
			}
			_, err := c.readResult()
			return err
		}
		// Three chunks for the blob and two for the note; neither value is in the execute.
		chunks := [][]byte{{0x00, 0xff}, bytes.Repeat([]byte{0xab}, 100_000), {0x00}}
		for _, ch := range chunks {
			longData(1, ch)
		}
		longData(2, []byte("no"))
		longData(2, []byte("te ✓"))
		if err := execute(100, nil, nil); err != nil {
			t.Fatalf("execute with long data: %v", err)
		}
		// Long data is consumed by the execute: the next one sends its values inline.
		if err := execute(101, []byte("inline"), []byte("inline note")); err != nil {
			t.Fatalf("execute after long data: %v", err)
		}
		// COM_STMT_RESET discards long data sent before it.
		longData(1, []byte("discarded"))
		if err := c.command(comStmtReset, binary.LittleEndian.AppendUint32(nil, id)); err != nil {
			t.Fatal(err)
		}
		if r, err := c.readResult(); err != nil || r.OK == nil {
			t.Fatalf("COM_STMT_RESET: %+v, %v", r, err)
		}
		if err := execute(102, []byte("after reset"), []byte("n")); err != nil {
			t.Fatalf("execute after COM_STMT_RESET: %v", err)
		}
		for _, w := range []struct {
			id         int
			blob, note string
		}{{100, string(bytes.Join(chunks, nil)), "note ✓"}, {101, "inline", "inline note"}, {102, "after reset", "n"}} {
			r := query(t, direct, "SELECT b, note FROM ld WHERE id = ?", w.id)
			if len(r.Rows) != 1 || string(asBytes(r.Rows[0][0])) != w.blob || text(r.Rows[0][1]) != w.note {
				t.Errorf("row %d: stored %v, want blob %s and note %q", w.id, r.Rows, short([]byte(w.blob)), w.note)
			}
		}
	})
}

// testPreparedStatementCache prepares the same text in sessions whose state gives it
// different meanings, over a pool of one backend connection: each session must get the
// answer of its own state (the proxy caches prepared statements on backend connections).
func testPreparedStatementCache(t *testing.T, e *env) {
	a, b := dbMap{Logical: "pa", Physical: "pa_phys"}, dbMap{Logical: "pb", Physical: "pb_phys"}
	cfg := e.config(t, a, b)
	cfg.Backends[0].Pool = poolConfig{MaxOpen: 1, MaxIdle: 1}
	p := startProxy(t, cfg)
	for _, d := range []dbMap{a, b} {
		mustExec(t, e.direct(t, d.Physical), "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))",
			"INSERT INTO t VALUES (1, 'from "+d.Logical+"')")
	}
	// Regression: a statement prepared on the backend connection by another session, in
	// another database or under another character set or sql_mode, must not be reused.
	for _, tc := range []struct {
		name   string
		setupA []string
		setupB []string
		dbA    string
		dbB    string
		sql    string
		wantA  string
		wantB  string
	}{
		{"DefaultDatabase", nil, nil, a.Logical, b.Logical, "SELECT v FROM t WHERE id = ? + 1", "from pa", "from pb"},
		{"CharacterSet", []string{"SET NAMES latin1"}, nil, a.Logical, a.Logical, "SELECT CHAR_LENGTH('é') + ?", "2", "1"},
		{"SQLMode", []string{"SET sql_mode = 'PIPES_AS_CONCAT'"}, nil, a.Logical, a.Logical, "SELECT CONCAT('a' || 'b', ?)", "ab0", "00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sa, err := p.open(t, sha2User, sha2Pass, tc.dbA).Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer sa.Close()
			sb, err := p.open(t, sha2User, sha2Pass, tc.dbB).Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer sb.Close()
			mustExec(t, sa, tc.setupA...)
			mustExec(t, sb, tc.setupB...)
			// Both prepare, then execute in turns: A's executions follow B's prepare.
			stA, err := sa.PrepareContext(context.Background(), tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			defer stA.Close()
			stB, err := sb.PrepareContext(context.Background(), tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			defer stB.Close()
			for i := range 3 {
				for _, s := range []struct {
					name string
					st   *sql.Stmt
					want string
				}{{"A", stA, tc.wantA}, {"B", stB, tc.wantB}} {
					var v string
					if err := s.st.QueryRowContext(context.Background(), 0).Scan(&v); err != nil {
						t.Fatalf("round %d: session %s: %v", i, s.name, err)
					}
					if v != s.want {
						t.Errorf("round %d: session %s: %s = %s, want %s", i, s.name, tc.sql, v, s.want)
					}
				}
			}
		})
	}
}

func asBytes(v any) []byte {
	switch v := v.(type) {
	case []byte:
		return v
	case string:
		return []byte(v)
	}
	return nil
}

func floatEqual(a, b string) bool {
	var x, y float64
	if _, err := fmt.Sscan(a, &x); err != nil {
		return false
	}
	if _, err := fmt.Sscan(b, &y); err != nil {
		return false
	}
	return x == y
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func md5hex(b []byte) string {
	h := md5.Sum(b)
	return hex.EncodeToString(h[:])
}
