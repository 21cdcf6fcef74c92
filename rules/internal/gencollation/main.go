// Command gencollation writes rules/collation_table.go, the weight table of MariaDB's
// utf8mb4_general_ci, from a running MariaDB: the reference implementation, never a hand
// approximation. Run it by hand when the table must change (a new MariaDB major version):
//
//	docker run -d --rm --name gencoll -p 127.0.0.1:13306:3306 -e MARIADB_ROOT_PASSWORD=pw \
//	    --tmpfs /var/lib/mysql $(bash scripts/mariadb-image.sh)
//	go run ./rules/internal/gencollation -dsn 'root:pw@tcp(127.0.0.1:13306)/mysql' \
//	    -out rules/collation_table.go
//	docker stop gencoll
//
// It asks the server for WEIGHT_STRING(CONVERT(CHAR(cp USING utf32) USING utf8mb4) COLLATE
// utf8mb4_general_ci) for every BMP code point and keeps only the code points whose weight
// is not the code point itself (about 1,100). Before writing it checks the assumptions
// rules.Collation relies on, and refuses to write if the server disagrees:
//   - every BMP code point weighs exactly two bytes under utf8mb4_general_ci;
//   - every supplementary code point weighs 0xFFFD (sampled);
//   - utf8mb4_bin weighs each character as its code point in three bytes (sampled);
//   - WEIGHT_STRING keeps trailing spaces, while = ignores them (PAD SPACE), so the proxy
//     strips the space weight at the end of a key itself;
//   - the weight string of a string is the concatenation of its characters' weights (sampled).
package main

import (
	"bytes"
	"context"
	"database/sql"
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
	if err := checkRules(ctx, db); err != nil {
		log.Fatalf("the server breaks an assumption of rules.Collation: %v", err)
	}
	src, err := render(version, table)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s: %d code points differ from identity (MariaDB %s)", *out, len(table), version)
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
		if w, err = weight(ch, "utf8mb4_bin"); err != nil {
			return err
		}
		if want := []byte{byte(cp >> 16), byte(cp >> 8), byte(cp)}; !bytes.Equal(w, want) {
			return fmt.Errorf("bin: U+%04X weighs %x, want %x", cp, w, want)
		}
	}
	for _, coll := range []string{"utf8mb4_general_ci", "utf8mb4_bin"} {
		var eq bool
		var w []byte
		err := db.QueryRowContext(ctx, "SELECT 'ab' = 'ab  ' COLLATE "+coll+", WEIGHT_STRING('ab ' COLLATE "+coll+")").Scan(&eq, &w)
		if err != nil {
			return err
		}
		space := []byte{0x00, 0x20}
		if coll == "utf8mb4_bin" {
			space = []byte{0x00, 0x00, 0x20}
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
	return nil
}

func render(version string, table []uint32) ([]byte, error) {
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
	b.WriteString("}\n")
	return format.Source([]byte(b.String()))
}
