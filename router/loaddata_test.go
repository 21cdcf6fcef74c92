package router

import (
	"testing"

	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
)

// TestKeepDuplicateHandling: a rewritten LOAD DATA LOCAL keeps the client's duplicate
// handling; the IGNORE the parser implies for LOCAL is not written out.
func TestKeepDuplicateHandling(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"LOAD DATA LOCAL INFILE 'f.csv' INTO TABLE shop.t", "LOAD DATA LOCAL INFILE 'f.csv' INTO TABLE `phys`.`t`"},
		{"load data local infile 'f.csv' ignore into table shop.t", "LOAD DATA LOCAL INFILE 'f.csv' IGNORE INTO TABLE `phys`.`t`"},
		{"LOAD DATA LOCAL INFILE 'f.csv' REPLACE INTO TABLE shop.t", "LOAD DATA LOCAL INFILE 'f.csv' REPLACE INTO TABLE `phys`.`t`"},
		{"LOAD DATA LOW_PRIORITY LOCAL INFILE 'it''s IGNORE INTO TABLE x' INTO TABLE shop.t", "LOAD DATA LOW_PRIORITY LOCAL INFILE 'it''s IGNORE INTO TABLE x' INTO TABLE `phys`.`t`"},
		{"LOAD DATA LOCAL INFILE \"f\" IGNORE INTO TABLE shop.t FIELDS TERMINATED BY ','", "LOAD DATA LOCAL INFILE 'f' IGNORE INTO TABLE `phys`.`t` FIELDS TERMINATED BY ','"},
	} {
		st, err := parser.New().ParseOneStmt(tc.text, "", "")
		if err != nil {
			t.Fatalf("%s: %v", tc.text, err)
		}
		n := st.(*ast.LoadDataStmt)
		n.Table.Schema = ast.NewCIStr("phys")
		var sb strings.Builder
		if err := n.Restore(format.NewRestoreCtx(format.DefaultRestoreFlags|format.RestoreStringEscapeBackslash|format.RestoreStringWithoutDefaultCharset, &sb)); err != nil {
			t.Fatal(err)
		}
		if got := keepDuplicateHandling(n, tc.text, sb.String()); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.text, got, tc.want)
		}
	}
}
