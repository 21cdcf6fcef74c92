package integration

import (
	"bytes"
	"database/sql"
	"fmt"
	"testing"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
	"github.com/shardproxy/shardproxy/rules"
)

// collationSamples mix case, accents, trailing spaces and tabs, CJK, emoji, ß and a few
// characters with odd case mappings.
var collationSamples = []string{
	"abc", "ABC", "Abc  ", "abc\t", "é", "e", "É ", "ß", "s", "SS", "Straße", "STRASE", "STRASSE",
	"中文", "中文 ", "日本", "😀", "🙂", "😀 ", "", " ", "   ", "Ünïcode", "UNICODE", "ǅ", "ǆ", "ﬁ", "İ", "ı",
	"i", "K", "k", "\u00a0", "a\u00a0", "Ωμέγα", "ΩΜΕΓΑ", "ss", "ﬁ", "fi", "42", "４２", "٤٢", "a\u0301", "\x00", "a\x00",
}

// TestCollationWeightString compares rules.Collation's keys with MariaDB's WEIGHT_STRING:
// the key must be the server's weight string without the trailing space weights, two
// samples must have equal keys exactly when the server holds them equal (=), and under
// utf8mb4_general_ci every BMP character must weigh what the generated table says.
func TestCollationWeightString(t *testing.T) {
	srv := mariadbtest.Start(t)
	db := srv.DB(t, "mysql")
	db.SetMaxOpenConns(1)
	for _, name := range []string{rules.CollationGeneralCI, rules.CollationBin, rules.CollationUnicodeCI} {
		coll, err := rules.LookupCollation(name)
		if err != nil {
			t.Fatal(err)
		}
		var spaceW []byte
		if err := db.QueryRow("SELECT WEIGHT_STRING(' ' COLLATE " + name + ")").Scan(&spaceW); err != nil || len(spaceW) == 0 {
			t.Fatalf("%s: space weighs %x: %v", name, spaceW, err)
		}
		keys := make([][]byte, len(collationSamples))
		for i, s := range collationSamples {
			var w []byte
			if err := db.QueryRow("SELECT WEIGHT_STRING(CONVERT(? USING utf8mb4) COLLATE "+name+")", s).Scan(&w); err != nil {
				t.Fatalf("%s WEIGHT_STRING(%q): %v", name, s, err)
			}
			for len(w) >= len(spaceW) && bytes.HasSuffix(w, spaceW) {
				w = w[:len(w)-len(spaceW)]
			}
			keys[i] = coll.AppendKey(nil, s)
			if !bytes.Equal(keys[i], w) {
				t.Errorf("%s %q: key %x, MariaDB's weight string %x", name, s, keys[i], w)
			}
		}
		for i, a := range collationSamples {
			for j, b := range collationSamples[i+1:] {
				var eq bool
				if err := db.QueryRow("SELECT CONVERT(? USING utf8mb4) COLLATE "+name+" = CONVERT(? USING utf8mb4)", a, b).Scan(&eq); err != nil {
					t.Fatal(err)
				}
				if got := bytes.Equal(keys[i], keys[i+1+j]); got != eq {
					t.Errorf("%s: %q = %q is %v on MariaDB, keys equal %v", name, a, b, eq, got)
				}
			}
		}
	}
	for _, name := range []string{rules.CollationGeneralCI, rules.CollationUnicodeCI} {
		t.Run("EveryBMPCharacter/"+name, func(t *testing.T) {
			everyBMPCharacter(t, db, name)
		})
	}
}

// everyBMPCharacter compares the key of "x" followed by each BMP character with MariaDB's
// weight string without trailing space weights.
func everyBMPCharacter(t *testing.T, db *sql.DB, name string) {
	coll, err := rules.LookupCollation(name)
	if err != nil {
		t.Fatal(err)
	}
	var spaceW []byte
	if err := db.QueryRow("SELECT WEIGHT_STRING(' ' COLLATE " + name + ")").Scan(&spaceW); err != nil || len(spaceW) == 0 {
		t.Fatalf("%s: space weighs %x: %v", name, spaceW, err)
	}
	rows, err := db.Query("SELECT seq, WEIGHT_STRING(CONVERT(CONCAT('x', CHAR(seq USING utf32)) USING utf8mb4) COLLATE " + name + ") " +
		"FROM seq_0_to_65535 WHERE seq NOT BETWEEN 55296 AND 57343")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n, bad int
	for rows.Next() {
		var cp rune
		var w []byte
		if err := rows.Scan(&cp, &w); err != nil {
			t.Fatal(err)
		}
		n++
		got := coll.AppendKey(nil, "x"+string(cp))
		for bytes.HasSuffix(w, spaceW) {
			w = w[:len(w)-len(spaceW)]
		}
		if !bytes.Equal(got, w) && bad < 20 {
			bad++
			t.Errorf("%s U+%04X: key %x, MariaDB %x", name, cp, got, w)
		}
	}
	if err := rows.Err(); err != nil || n != 0x10000-0x800 {
		t.Fatalf("%d code points read: %v", n, err)
	}
}

// TestCollationShardKeys: through the proxy, a row inserted under one spelling of a text
// key is found under every spelling MariaDB holds equal under the key column's collation
// (case, accents, trailing spaces, ß = s under utf8mb4_general_ci, ß = ss and ４２ = 42 under
// utf8mb4_unicode_ci), lives on the shard the rules compute, and a unique key cannot be
// duplicated on another shard by such a variant. Under utf8mb4_bin only trailing spaces are
// ignored.
func TestCollationShardKeys(t *testing.T) {
	srv := mariadbtest.Start(t, mariadbtest.WithDatabases("c0", "c1", "c2", "c3"))
	shardNames := []string{"s0", "s1", "s2", "s3"}
	cfg := &proxyConfig{
		Listen: "127.0.0.1:0",
		Users:  []userConfig{{Name: appUser, PasswordHash: hashPassword(t, "native", appPass)}},
		Backends: []backendConfig{{Name: "b0", Addr: srv.Addr(), User: srv.User, Password: srv.Password,
			Pool: poolConfig{MaxOpen: 10, MaxIdle: 10}}},
		Schemes: []map[string]any{
			{"name": "by_code", "function": "hash", "slots": 4, "shards": shardNames}, // default: utf8mb4_general_ci
			{"name": "by_bin", "function": "hash", "slots": 4, "shards": shardNames, "collation": rules.CollationBin},
			{"name": "by_uni", "function": "hash", "slots": 4, "shards": shardNames, "collation": rules.CollationUnicodeCI},
		},
		Databases: []databaseConfig{{Name: "shop", DefaultShard: "s0", Tables: []map[string]any{
			{"name": "codes", "kind": "sharded", "key": "code", "scheme": "by_code"},
			{"name": "bcodes", "kind": "sharded", "key": "code", "scheme": "by_bin"},
			{"name": "ucodes", "kind": "sharded", "key": "code", "scheme": "by_uni"},
		}}},
	}
	shards := make([]*sql.DB, 4)
	for i := range shards {
		cfg.Shards = append(cfg.Shards, shardConfig{Name: shardNames[i], Primary: "b0", Database: fmt.Sprintf("c%d", i)})
		shards[i] = srv.DB(t, fmt.Sprintf("c%d", i))
	}
	p := startProxy(t, cfg)
	db := p.open(t, appUser, appPass, "shop")
	for table, coll := range map[string]string{"codes": "utf8mb4_general_ci", "bcodes": "utf8mb4_bin", "ucodes": "utf8mb4_unicode_ci"} {
		mustExec(t, db, "CREATE TABLE "+table+" (code VARCHAR(32) PRIMARY KEY, note VARCHAR(32)) DEFAULT CHARSET utf8mb4 COLLATE "+coll)
	}
	for _, tc := range []struct {
		table, coll string
		groups      [][]string // a key, then spellings MariaDB holds equal to it
	}{
		{"codes", rules.CollationGeneralCI, [][]string{
			{"abc", "ABC", "Abc ", "aBc   ", "ÀBÇ"},
			{"zürich", "ZURICH", "Zürich  ", "zurich"},
			{"straße", "STRASE", "Straße ", "strase"},
			{"日本", "日本 ", "日本  "},
			{"😀k", "🙂K", "😀k "},
			{"élan", "ELAN", "Élan ", "elan"},
			{"order-7", "ORDER-7", "Order-7 "},
			{"x", "X", "x     "},
		}},
		{"bcodes", rules.CollationBin, [][]string{
			{"abc", "abc  "}, {"ABC", "ABC "}, {"Abc", "Abc   "}, {"é", "é "}, {"e", "e  "}, {"ß", "ß "}, {"s", "s "},
		}},
		{"ucodes", rules.CollationUnicodeCI, [][]string{
			{"straße", "STRASSE", "Strasse ", "strasse"},
			{"ﬁne", "FINE", "fine "},
			{"42", "４２", "٤٢", "42\u00a0"},
			{"ångström", "ANGSTROM", "Ångström "},
			{"ωμέγα", "ΩΜΕΓΑ", "Ωμεγα "},
			{"中文", "中文 "},
		}},
	} {
		t.Run(tc.coll, func(t *testing.T) {
			coll, err := rules.LookupCollation(tc.coll)
			if err != nil {
				t.Fatal(err)
			}
			checkShardKeys(t, p, db, shards, tc.table, rules.HashFunc{N: 4, Collation: coll}, tc.groups)
		})
	}
}

// checkShardKeys inserts each group's first key into table through the proxy, checks it
// on the shard hash places it, finds it under every other spelling, and fails to insert
// those as new keys (1062).
func checkShardKeys(t *testing.T, p *proxy, db *sql.DB, shards []*sql.DB, table string, hash rules.HashFunc, groups [][]string) {
	t.Helper()
	for _, g := range groups {
		key := g[0]
		mustExecArgs(t, db, "INSERT INTO "+table+" (code, note) VALUES (?, ?)", key, "n:"+key)
		slot, err := hash.Slot(rules.StrValue(key))
		if err != nil {
			t.Fatal(err)
		}
		for i, sh := range shards {
			n := queryString(t, sh, "SELECT COUNT(*) FROM "+table+" WHERE code = ?", key)
			if (i == slot) != (n == "1") {
				t.Errorf("%q: shard %d holds %s rows; the rules put it on shard %d", key, i, n, slot)
			}
		}
		for _, v := range g[1:] {
			if s, _ := hash.Slot(rules.StrValue(v)); s != slot {
				t.Errorf("%q: slot %d, %q is on slot %d", v, s, key, slot)
			}
			for _, interpolate := range []string{"false", "true"} {
				dbv := p.open(t, appUser, appPass, "shop", "interpolateParams="+interpolate)
				r := query(t, dbv, "SELECT note FROM "+table+" WHERE code = ?", v)
				if len(r.Rows) != 1 || text(r.Rows[0][0]) != "n:"+key {
					t.Errorf("SELECT by %q (interpolateParams=%s): %v, want the row of %q", v, interpolate, r.Rows, key)
				}
			}
			_, err := db.Exec("INSERT INTO "+table+" (code, note) VALUES (?, 'dup')", v)
			wantError(t, err, 1062, "23000")
		}
	}
	var total int
	for _, sh := range shards {
		var n int
		if err := sh.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != len(groups) {
		t.Errorf("%d rows in %s over the shards, want %d: a variant was stored as a second key", total, table, len(groups))
	}
}
