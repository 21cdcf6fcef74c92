package router

import (
	"slices"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// TestRowCollector feeds text-protocol results to the collector a bound subquery reads.
func TestRowCollector(t *testing.T) {
	def := func(typ byte) []byte {
		return wire.AppendColumnDef(nil, wire.Column{Name: "c", Type: typ})
	}
	row := func(vals ...string) []byte {
		var p []byte
		for _, v := range vals {
			if v == "NULL" {
				p = append(p, 0xfb)
			} else {
				p = wire.AppendLenencString(p, v)
			}
		}
		return p
	}
	eof := wire.AppendEOF(nil, 0, 0)
	for _, c := range []struct {
		name    string
		max     int
		pkts    [][]byte
		rows    string
		kinds   []merge.Kind
		tooMany bool
		errCode uint16
	}{
		{name: "rows and NULL", max: 10, pkts: [][]byte{{2}, def(mysql.MYSQL_TYPE_LONGLONG), def(mysql.MYSQL_TYPE_VAR_STRING), eof, row("1", "a"), row("2", "NULL"), eof},
			rows: "1,a;2,NULL", kinds: []merge.Kind{merge.KindSigned, merge.KindString}},
		{name: "empty", max: 10, pkts: [][]byte{{1}, def(mysql.MYSQL_TYPE_NEWDECIMAL), eof, eof}, kinds: []merge.Kind{merge.KindDecimal}},
		{name: "more than max", max: 2, pkts: [][]byte{{1}, def(mysql.MYSQL_TYPE_LONGLONG), eof, row("1"), row("2"), row("3"), eof},
			rows: "1;2", kinds: []merge.Kind{merge.KindSigned}, tooMany: true},
		{name: "backend error", max: 2, pkts: [][]byte{wire.AppendErr(nil, sqlerr.New(1146, "Table 'x' doesn't exist"))}, errCode: 1146},
		{name: "row shorter than its columns", max: 2, pkts: [][]byte{{2}, def(mysql.MYSQL_TYPE_LONGLONG), def(mysql.MYSQL_TYPE_LONGLONG), eof, row("1")},
			kinds: []merge.Kind{merge.KindSigned, merge.KindSigned}, errCode: sqlerr.ErUnknownError},
	} {
		t.Run(c.name, func(t *testing.T) {
			col := &rowCollector{max: c.max}
			for _, p := range c.pkts {
				if err := col.WritePacket(p); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for _, r := range col.rows {
				var vals []string
				for _, v := range r {
					if v == nil {
						vals = append(vals, "NULL")
					} else {
						vals = append(vals, string(v))
					}
				}
				got = append(got, strings.Join(vals, ","))
			}
			if g := strings.Join(got, ";"); g != c.rows {
				t.Errorf("rows %q, want %q", g, c.rows)
			}
			var kinds []merge.Kind
			for _, d := range col.defs {
				kinds = append(kinds, d.kind())
			}
			if !slices.Equal(kinds, c.kinds) {
				t.Errorf("kinds %v, want %v", kinds, c.kinds)
			}
			if col.tooMany != c.tooMany {
				t.Errorf("tooMany %v, want %v", col.tooMany, c.tooMany)
			}
			var code uint16
			if e, ok := sqlerr.As(col.err); ok {
				code = e.Code
			}
			if code != c.errCode {
				t.Errorf("error %v, want code %d", col.err, c.errCode)
			}
		})
	}
}
