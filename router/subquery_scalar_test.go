package router

import (
	"testing"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/sqlerr"
)

// TestTypedLiteral pins how a scalar subquery's value is written for each column type and
// place: what MariaDB then types as the subquery's column (a BIGINT stays BIGINT in a select
// list, a DECIMAL keeps its precision and scale even when NULL, temporal values compare as
// temporal values, strings keep their character set and collation, byte strings their bytes),
// and plain literals where the proxy evaluates the value itself (HAVING) or routes by it.
func TestTypedLiteral(t *testing.T) {
	ps := parser.New()
	col := func(typ byte, flags uint16, decimals byte, collation uint16, length uint32) subqueryCol {
		return subqueryCol{typ: typ, flags: flags, decimals: decimals, collation: collation, length: length}
	}
	bigint := col(mysql.MYSQL_TYPE_LONGLONG, 0, 0, 63, 21)
	dec := col(mysql.MYSQL_TYPE_NEWDECIMAL, 0, 6, 63, 16)
	for _, c := range []struct {
		name string
		v    []byte
		col  subqueryCol
		mode bindMode
		want string
	}{
		{"bigint in a select list", []byte("42"), bigint, bindField, "IFNULL(42, 9223372036854775807)"},
		{"bigint in a WHERE routes", []byte("42"), bigint, bindValue, "42"},
		{"NULL bigint", nil, bigint, bindValue, "IF(FALSE, 9223372036854775807, NULL)"},
		{"unsigned bigint", []byte("18446744073709551615"), col(mysql.MYSQL_TYPE_LONGLONG, mysql.UNSIGNED_FLAG, 0, 63, 20), bindField, "IFNULL(18446744073709551615, 18446744073709551615)"},
		{"int", []byte("-7"), col(mysql.MYSQL_TYPE_LONG, 0, 0, 63, 11), bindField, "-7"},
		{"NULL int", nil, col(mysql.MYSQL_TYPE_LONG, 0, 0, 63, 11), bindField, "CAST(NULL AS SIGNED)"},
		{"decimal keeps precision and scale", []byte("12.500000"), dec, bindValue, "CAST(12.500000 AS DECIMAL(14, 6))"},
		{"decimal of scale 0", []byte("15"), col(mysql.MYSQL_TYPE_NEWDECIMAL, 0, 0, 63, 33), bindField, "CAST(15 AS DECIMAL(32))"},
		{"NULL decimal", nil, dec, bindField, "CAST(NULL AS DECIMAL(14, 6))"},
		{"decimal in HAVING", []byte("12.500000"), dec, bindPlain, "12.500000"},
		{"double", []byte("1.5"), col(mysql.MYSQL_TYPE_DOUBLE, 0, 31, 63, 23), bindField, "1.5e+00"},
		{"date", []byte("2026-01-05"), col(mysql.MYSQL_TYPE_DATE, 0, 0, 63, 10), bindValue, "CAST('2026-01-05' AS DATE)"},
		{"datetime with fraction", []byte("2026-01-05 10:00:00.25"), col(mysql.MYSQL_TYPE_DATETIME, 0, 2, 63, 22), bindValue, "CAST('2026-01-05 10:00:00.25' AS DATETIME(2))"},
		{"time", []byte("-10:00:01"), col(mysql.MYSQL_TYPE_TIME, 0, 0, 63, 10), bindField, "CAST('-10:00:01' AS TIME)"},
		{"string of the default collation", []byte("it's"), col(mysql.MYSQL_TYPE_VAR_STRING, 0, 0, 45, 160), bindValue, "CONVERT('it''s' USING 'utf8mb4') COLLATE utf8mb4_general_ci"},
		{"string of another collation", []byte("a"), col(mysql.MYSQL_TYPE_VAR_STRING, 0, 0, 46, 160), bindValue, "CONVERT('a' USING 'utf8mb4') COLLATE utf8mb4_bin"},
		{"byte string", []byte{0, 'a', 0xff}, col(mysql.MYSQL_TYPE_BLOB, mysql.BINARY_FLAG, 0, 63, 65535), bindValue, "UNHEX('0061ff')"},
		{"NULL byte string", nil, col(mysql.MYSQL_TYPE_VAR_STRING, mysql.BINARY_FLAG, 0, 63, 10), bindField, "CAST(NULL AS BINARY)"},
		{"NULL string", nil, col(mysql.MYSQL_TYPE_VAR_STRING, 0, 0, 45, 160), bindField, "CONVERT(NULL USING 'utf8mb4') COLLATE utf8mb4_general_ci"},
		{"NULL column", nil, col(mysql.MYSQL_TYPE_NULL, 0, 0, 63, 0), bindField, "NULL"},
		{"date in an inserted row", []byte("2026-01-05"), col(mysql.MYSQL_TYPE_DATE, 0, 0, 63, 10), bindRow, "'2026-01-05'"},
		{"decimal in an inserted row", []byte("-0.50"), dec, bindRow, "-0.50"},
		{"byte string in an inserted row", []byte{0, 'a'}, col(mysql.MYSQL_TYPE_VAR_STRING, mysql.BINARY_FLAG, 0, 63, 10), bindRow, "UNHEX('0061')"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, err := typedLiteral(ps, c.v, c.col, c.mode)
			if err != nil {
				t.Fatal(err)
			}
			got, err := planner.RestoreSQL(planner.DefaultRestoreFlags, nil, e)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

// TestScalarValue: no row is NULL, one row its value, several rows a subquery that fails
// as the original does where MariaDB evaluates it (in HAVING, which the proxy evaluates,
// 1242 at once), several columns a row.
func TestScalarValue(t *testing.T) {
	ps := parser.New()
	one := []subqueryCol{{typ: mysql.MYSQL_TYPE_LONG, length: 11, collation: 63}}
	two := append(one, subqueryCol{typ: mysql.MYSQL_TYPE_LONG, length: 11, collation: 63})
	for _, c := range []struct {
		name string
		res  subqueryResult
		mode bindMode
		want string
		code uint16
	}{
		{"no row", subqueryResult{cols: one}, bindValue, "CAST(NULL AS SIGNED)", 0},
		{"one row", subqueryResult{cols: one, rows: [][][]byte{{[]byte("3")}}}, bindValue, "3", 0},
		{"two rows", subqueryResult{cols: one, rows: [][][]byte{{[]byte("3")}, {[]byte("4")}}}, bindField, "(SELECT 3 UNION ALL SELECT 4)", 0},
		{"two rows in HAVING", subqueryResult{cols: one, rows: [][][]byte{{[]byte("3")}, {[]byte("4")}}}, bindPlain, "", erSubqueryNo1Row},
		{"two columns", subqueryResult{cols: two, rows: [][][]byte{{[]byte("3"), nil}}}, bindValue, "ROW(3,CAST(NULL AS SIGNED))", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, err := scalarValue(ps, &c.res, c.mode)
			if c.code != 0 {
				if se, ok := sqlerr.As(err); !ok || se.Code != c.code || se.State != "21000" {
					t.Fatalf("error %v, want %d (21000)", err, c.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := planner.RestoreSQL(planner.DefaultRestoreFlags, nil, e.(ast.Node))
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}
