// Command gencollation writes rules/collation_table.go, the weight tables of MariaDB's
// utf8mb4_general_ci and utf8mb4_unicode_ci, from a running MariaDB: the reference
// implementation, never a hand approximation. Run it by hand when the tables must change (a
// new MariaDB major version):
//
//	docker run -d --rm --name gencoll -p 127.0.0.1:13306:3306 -e MARIADB_ROOT_PASSWORD=pw \
//	    --tmpfs /var/lib/mysql $(bash scripts/mariadb-image.sh)
//	go run ./rules/internal/gencollation -dsn 'root:pw@tcp(127.0.0.1:13306)/mysql' \
//	    -out rules/collation_table.go
//	docker stop gencoll
//
// It asks the server for WEIGHT_STRING(CONVERT(CHAR(cp USING utf32) USING utf8mb4) COLLATE
// c) for every BMP code point and keeps only the code points whose weights are not the
// default: under utf8mb4_general_ci the code point itself (about 1,100 differ), under
// utf8mb4_unicode_ci the UCA implicit weights (about 12,000 differ, written compressed:
// see unicodeCIData in the output). Before writing it checks the assumptions
// rules.Collation relies on, and refuses to write if the server disagrees:
//   - every BMP code point weighs exactly two bytes under utf8mb4_general_ci, and a whole
//     number of two-byte weights under utf8mb4_unicode_ci;
//   - every supplementary code point weighs 0xFFFD under both (sampled);
//   - utf8mb4_bin weighs each character as its code point in three bytes (sampled);
//   - WEIGHT_STRING keeps trailing spaces, while = ignores them (PAD SPACE), so the proxy
//     strips the space weight at the end of a key itself;
//   - the weight string of a string is the concatenation of its characters' weights: no
//     contractions (checked over 260,000 pairs of BMP characters under utf8mb4_unicode_ci).
package main

import (
	"bytes"
	"compress/flate"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql"
)

func main() {
	dsn := flag.String("dsn", "root:pw@tcp(127.0.0.1:13306)/mysql", "go-sql-driver DSN of a MariaDB (the project's image)")
	out := flag.String("out", "rules/collation_table.go", "file to write")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := sql.Open("mysql", *dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, "SET NAMES utf8mb4"); err != nil {
		log.Fatal(err)
	}
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		log.Fatal(err)
	}
	table, err := generalCI(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	uca, n, err := unicodeCI(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	if err := checkRules(ctx, db); err != nil {
		log.Fatalf("the server breaks an assumption of rules.Collation: %v", err)
	}
	src, err := render(version, table, uca)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s: general_ci %d code points differ from identity, unicode_ci %d from the implicit weights "+
		"(%d bytes compressed) (MariaDB %s)", *out, len(table), n, len(uca), version)
}

// ucaImplicit is the UCA implicit weight of a BMP code point without a table entry, as
// MariaDB computes it for utf8mb4_unicode_ci (UCA 4.0.0); rules/collation.go has the same
// (rules.TestCollationKeyVectors and the integration test check that they agree).
func ucaImplicit(cp uint32) []uint16 {
	base := uint32(0xFBC0)
	switch {
	case cp >= 0x3400 && cp <= 0x4DB5:
		base = 0xFB80
	case cp >= 0x4E00 && cp <= 0x9FA5:
		base = 0xFB40
	}
	return []uint16{uint16(base + cp>>15), uint16(cp&0x7FFF | 0x8000)}
}

// unicodeCI returns the utf8mb4_unicode_ci entries that differ from ucaImplicit, encoded
// as unicodeCIData documents (raw DEFLATE of varints), and how many there are.
func unicodeCI(ctx context.Context, db *sql.DB) ([]byte, int, error) {
	rows, err := db.QueryContext(ctx, "SELECT seq, WEIGHT_STRING(CONVERT(CHAR(seq USING utf32) USING utf8mb4) "+
		"COLLATE utf8mb4_unicode_ci) FROM seq_0_to_65535 WHERE seq NOT BETWEEN 55296 AND 57343")
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var raw []byte
	prevCP, prevW, n := -1, 0, 0
	zigzag := func(d int) uint64 { return uint64(d<<1) ^ uint64(d>>63) }
	for rows.Next() {
		var cp uint32
		var w []byte
		if err := rows.Scan(&cp, &w); err != nil {
			return nil, 0, err
		}
		if len(w)%2 != 0 || len(w) > 2*255 {
			return nil, 0, fmt.Errorf("unicode_ci: U+%04X weighs %x: want two-byte weights", cp, w)
		}
		ws := make([]uint16, len(w)/2)
		for i := range ws {
			ws[i] = binary.BigEndian.Uint16(w[2*i:])
		}
		if slicesEqual(ws, ucaImplicit(cp)) {
			continue
		}
		n++
		raw = binary.AppendUvarint(raw, uint64(int(cp)-prevCP-1))
		prevCP = int(cp)
		raw = append(raw, byte(len(ws)))
		for _, x := range ws {
			raw = binary.AppendUvarint(raw, zigzag(int(x)-prevW))
			prevW = int(x)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	var z bytes.Buffer
	fw, err := flate.NewWriter(&z, flate.BestCompression)
	if err != nil {
		return nil, 0, err
	}
	if _, err := fw.Write(raw); err != nil {
		return nil, 0, err
	}
	if err := fw.Close(); err != nil {
		return nil, 0, err
	}
	return z.Bytes(), n, nil
}

func slicesEqual(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// generalCI returns, for every BMP code point whose utf8mb4_general_ci weight is not the
// code point itself, cp<<16 | weight, in code point order.
func generalCI(ctx context.Context, db *sql.DB) ([]uint32, error) {
	rows, err := db.QueryContext(ctx, "SELECT seq, WEIGHT_STRING(CONVERT(CHAR(seq USING utf32) USING utf8mb4) "+
		"COLLATE utf8mb4_general_ci) FROM seq_0_to_65535")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var table []uint32
	n := 0
	for rows.Next() {
		var cp uint32
		var w []byte
		if err := rows.Scan(&cp, &w); err != nil {
			return nil, err
		}
		n++
		if len(w) != 2 {
			return nil, fmt.Errorf("U+%04X weighs %x: want two bytes", cp, w)
		}
		if wt := uint32(binary.BigEndian.Uint16(w)); wt != cp {
			table = append(table, cp<<16|wt)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if n != 0x10000 {
		return nil, fmt.Errorf("%d code points answered, want 65536", n)
	}
	return table, nil
}

// checkRules asks the server for what the generated table does not hold.
func checkRules(ctx context.Context, db *sql.DB) error {
	weight := func(expr, coll string) ([]byte, error) {
		var w []byte
		err := db.QueryRowContext(ctx, "SELECT WEIGHT_STRING(CONVERT("+expr+" USING utf8mb4) COLLATE "+coll+")").Scan(&w)
		return w, err
	}
	for _, cp := range []int{0x10000, 0x1F600, 0x1F9D1, 0x20000, 0x2A6D6, 0x10FFFF} {
		ch := fmt.Sprintf("CHAR(%d USING utf32)", cp)
		w, err := weight(ch, "utf8mb4_general_ci")
		if err != nil {
			return err
		}
		if !bytes.Equal(w, []byte{0xFF, 0xFD}) {
			return fmt.Errorf("general_ci: U+%04X weighs %x, want fffd", cp, w)
		}
		if w, err = weight(ch, "utf8mb4_unicode_ci"); err != nil {
			return err
		}
		if !bytes.Equal(w, []byte{0xFF, 0xFD}) {
			return fmt.Errorf("unicode_ci: U+%04X weighs %x, want fffd", cp, w)
		}
		if w, err = weight(ch, "utf8mb4_bin"); err != nil {
			return err
		}
		if want := []byte{byte(cp >> 16), byte(cp >> 8), byte(cp)}; !bytes.Equal(w, want) {
			return fmt.Errorf("bin: U+%04X weighs %x, want %x", cp, w, want)
		}
	}
	for _, coll := range []string{"utf8mb4_general_ci", "utf8mb4_bin", "utf8mb4_unicode_ci"} {
		var eq bool
		var w []byte
		err := db.QueryRowContext(ctx, "SELECT 'ab' = 'ab  ' COLLATE "+coll+", WEIGHT_STRING('ab ' COLLATE "+coll+")").Scan(&eq, &w)
		if err != nil {
			return err
		}
		space, err := weight("' '", coll)
		if err != nil {
			return err
		}
		if !eq || !bytes.HasSuffix(w, space) {
			return fmt.Errorf("%s: 'ab' = 'ab  ' is %v, WEIGHT_STRING('ab ') = %x: want PAD SPACE equality and a kept space weight", coll, eq, w)
		}
		// A string weighs the concatenation of its characters' weights.
		const sample = "0x41c3a9c39f20e4b8ad20f09f988020"
		var whole []byte
		if err := db.QueryRowContext(ctx, "SELECT WEIGHT_STRING(CONVERT(_binary "+sample+" USING utf8mb4) COLLATE "+coll+")").Scan(&whole); err != nil {
			return err
		}
		var parts []byte
		for _, r := range "Aéß 中 😀 " {
			p, err := weight(fmt.Sprintf("CHAR(%d USING utf32)", r), coll)
			if err != nil {
				return err
			}
			parts = append(parts, p...)
		}
		if !bytes.Equal(whole, parts) {
			return fmt.Errorf("%s: a string weighs %x, its characters %x", coll, whole, parts)
		}
	}
	return checkNoContractions(ctx, db)
}

// checkNoContractions compares, for 262,144 pairs of BMP characters (every character
// followed by four others spread over the BMP), the utf8mb4_unicode_ci weight string of the
// pair with the concatenation of the characters' weights.
func checkNoContractions(ctx context.Context, db *sql.DB) error {
	const (
		second = "((a.seq * 7919 + k.seq * 104729) % 65536)"
		ws     = "WEIGHT_STRING(CONVERT(%s USING utf8mb4) COLLATE utf8mb4_unicode_ci)"
		ch     = "CHAR(%s USING utf32)"
	)
	a, b := fmt.Sprintf(ch, "a.seq"), fmt.Sprintf(ch, second)
	q := "SELECT COUNT(*) FROM seq_0_to_65535 a JOIN seq_0_to_3 k " +
		"WHERE a.seq NOT BETWEEN 55296 AND 57343 AND " + second + " NOT BETWEEN 55296 AND 57343 AND " +
		fmt.Sprintf(ws, "CONCAT("+a+", "+b+")") + " <> CONCAT(" + fmt.Sprintf(ws, a) + ", " + fmt.Sprintf(ws, b) + ")"
	var n int
	if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return err
	}
	if n != 0 {
		return fmt.Errorf("unicode_ci: %d pairs of characters weigh other than their characters (contractions)", n)
	}
	return nil
}

func render(version string, table []uint32, uca []byte) ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "// Code generated by rules/internal/gencollation from MariaDB %s; DO NOT EDIT.\n\n", version)
	b.WriteString("package rules\n\n")
	b.WriteString("// generalCIWeights lists, as cp<<16 | weight in code point order, the BMP code points whose\n")
	b.WriteString("// utf8mb4_general_ci weight (MariaDB's WEIGHT_STRING) is not the code point itself.\n")
	b.WriteString("var generalCIWeights = [...]uint32{\n")
	for i, e := range table {
		if i%8 == 0 {
			b.WriteString("\t")
		}
		fmt.Fprintf(&b, "0x%08x,", e)
		if i%8 == 7 || i == len(table)-1 {
			b.WriteString("\n")
		} else {
			b.WriteString(" ")
		}
	}
	b.WriteString("}\n\n")
	b.WriteString("// unicodeCIData holds the utf8mb4_unicode_ci weights of the BMP code points whose weights\n")
	b.WriteString("// are not the UCA implicit ones (ucaImplicit), in code point order: base64 of raw DEFLATE\n")
	b.WriteString("// of, per code point, uvarint(cp - previous cp - 1), one byte n, then n weights, each as\n")
	b.WriteString("// a zigzag uvarint of its difference from the previous weight written.\n")
	b.WriteString("const unicodeCIData = \"\" +\n")
	enc := base64.StdEncoding.EncodeToString(uca)
	for len(enc) > 0 {
		n := min(96, len(enc))
		fmt.Fprintf(&b, "\t%q", enc[:n])
		enc = enc[n:]
		if len(enc) > 0 {
			b.WriteString(" +")
		}
		b.WriteString("\n")
	}
	return format.Source([]byte(b.String()))
}
