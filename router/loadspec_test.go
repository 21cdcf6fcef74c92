package router

import (
	"testing"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/infile"
)

// TestLoadFormat: a LOAD DATA's FIELDS and LINES clauses, MariaDB's defaults elsewhere.
func TestLoadFormat(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want infile.Format
	}{
		{"LOAD DATA LOCAL INFILE 'f' INTO TABLE t", infile.Default},
		{`LOAD DATA LOCAL INFILE 'f' INTO TABLE t FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '"' ESCAPED BY '' LINES STARTING BY 'x' TERMINATED BY '\r\n'`,
			infile.Format{FieldTerm: ",", Enclosed: `"`, Escaped: "", LineStart: "x", LineTerm: "\r\n"}},
		{`LOAD DATA LOCAL INFILE 'f' INTO TABLE t COLUMNS TERMINATED BY ';'`, infile.Format{FieldTerm: ";", Escaped: `\`, LineTerm: "\n"}},
		{`LOAD DATA LOCAL INFILE 'f' INTO TABLE t LINES TERMINATED BY '|'`, infile.Format{FieldTerm: "\t", Escaped: `\`, LineTerm: "|"}},
	} {
		st, err := parser.New().ParseOneStmt(tc.sql, "", "")
		if err != nil {
			t.Fatalf("%s: %v", tc.sql, err)
		}
		if got := loadFormat(st.(*ast.LoadDataStmt)); got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.sql, got, tc.want)
		}
	}
}

// TestDecodeLoadText: key bytes in MariaDB's latin1 (Windows-1252, its unassigned bytes as
// C1 controls) read as the text an INSERT would carry; UTF-8 sets pass through.
func TestDecodeLoadText(t *testing.T) {
	for _, tc := range []struct {
		cs, in, want string
	}{
		{"utf8mb4", "caf\xc3\xa9", "café"},
		{"binary", "caf\xc3\xa9", "café"},
		{"latin1", "caf\xe9", "café"},
		{"latin1", "\x80\x81\x9f\xa0\xff", "€\u0081Ÿ\u00a0ÿ"},
		{"latin1", "42", "42"},
	} {
		if got := decodeLoadText(tc.cs, []byte(tc.in)); got != tc.want {
			t.Errorf("%s %q: got %q, want %q", tc.cs, tc.in, got, tc.want)
		}
	}
}
