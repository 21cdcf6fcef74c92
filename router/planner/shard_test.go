package planner

import (
	"encoding/binary"
	"testing"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// Binary-protocol parameter types (enum_field_types).
const (
	tTiny     = 0x01
	tShort    = 0x02
	tLong     = 0x03
	tFloat    = 0x04
	tDouble   = 0x05
	tLongLong = 0x08
	tInt24    = 0x09
	tDate     = 0x0a
	tDateTime = 0x0c
	tYear     = 0x0d
	tNewDec   = 0xf6
	tBlob     = 0xfc
	tVarStr   = 0xfd
	tString   = 0xfe
)

func le(n int, v uint64) []byte {
	b := binary.LittleEndian.AppendUint64(nil, v)
	return b[:n]
}

func TestParamValue(t *testing.T) {
	cases := []struct {
		name string
		p    wire.Param
		want rules.Value
	}{
		{"tiny", wire.Param{Type: tTiny, Value: []byte{0xff}}, rules.IntValue(-1)},
		{"unsigned tiny", wire.Param{Type: tTiny, Unsigned: true, Value: []byte{0xff}}, rules.IntValue(255)},
		{"short", wire.Param{Type: tShort, Value: le(2, 0xfffe)}, rules.IntValue(-2)},
		{"unsigned short", wire.Param{Type: tShort, Unsigned: true, Value: le(2, 0xfffe)}, rules.IntValue(65534)},
		{"year", wire.Param{Type: tYear, Value: le(2, 2024)}, rules.IntValue(2024)},
		{"long", wire.Param{Type: tLong, Value: le(4, 0xfffffffd)}, rules.IntValue(-3)},
		{"unsigned long", wire.Param{Type: tLong, Unsigned: true, Value: le(4, 0xfffffffd)}, rules.IntValue(4294967293)},
		{"int24", wire.Param{Type: tInt24, Value: le(4, 7)}, rules.IntValue(7)},
		{"longlong", wire.Param{Type: tLongLong, Value: le(8, 1<<64-4)}, rules.IntValue(-4)},
		{"unsigned longlong in range", wire.Param{Type: tLongLong, Unsigned: true, Value: le(8, 42)}, rules.IntValue(42)},
		{"unsigned longlong above int64", wire.Param{Type: tLongLong, Unsigned: true, Value: le(8, 1<<64-1)}, rules.StrValue("18446744073709551615")},
		{"string", wire.Param{Type: tString, Value: []byte("\x03abc")}, rules.StrValue("abc")},
		{"varstring", wire.Param{Type: tVarStr, Value: []byte("\x0242")}, rules.StrValue("42")},
		{"blob from long data", wire.Param{Type: tBlob, Value: []byte("\x01x")}, rules.StrValue("x")},
		{"date", wire.Param{Type: tDate, Value: []byte{4, 0xe8, 0x07, 2, 29}}, rules.StrValue("2024-02-29")},
		{"datetime", wire.Param{Type: tDateTime, Value: []byte{7, 0xe8, 0x07, 12, 31, 23, 59, 58}}, rules.StrValue("2024-12-31 23:59:58")},
		{"zero datetime", wire.Param{Type: tDateTime, Value: []byte{0}}, rules.StrValue("0000-00-00")},
		{"NULL", wire.Param{Type: tLong, Null: true}, rules.Value{Null: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := paramValue(c.p)
			if err != nil || got != c.want {
				t.Errorf("paramValue = %v, %v; want %v", got, err, c.want)
			}
		})
	}
	for _, typ := range []byte{tFloat, tDouble} {
		if _, err := paramValue(wire.Param{Type: typ, Value: le(8, 0)}); sqlCode(err) != sqlerr.ErNotSupportedYet {
			t.Errorf("type %#x: %v, want 1235", typ, err)
		}
	}
	if _, err := paramValue(wire.Param{Type: tString, Value: []byte{5, 'a'}}); sqlCode(err) != sqlerr.ErMalformedPacket {
		t.Errorf("truncated string: %v, want 1835", err)
	}
}

// TestParamRoutesLikeLiteral: a key bound as a parameter lands in the slot of the same
// key written as a literal, whatever the type the client binds it with.
func TestParamRoutesLikeLiteral(t *testing.T) {
	f := rules.HashFunc{N: 4}
	want, _ := f.Slot(rules.IntValue(5))
	cases := []struct {
		name string
		p    wire.Param
	}{
		{"tiny", wire.Param{Type: tTiny, Value: []byte{5}}},
		{"long", wire.Param{Type: tLong, Value: le(4, 5)}},
		{"unsigned longlong", wire.Param{Type: tLongLong, Unsigned: true, Value: le(8, 5)}},
		{"string", wire.Param{Type: tString, Value: []byte("\x015")}},
		{"decimal", wire.Param{Type: tNewDec, Value: []byte("\x035.0")}}, // JDBC setBigDecimal
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := paramValue(c.p)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := f.Slot(v); got != want {
				t.Errorf("parameter %v: slot %d, the integer 5 is in slot %d", v, got, want)
			}
		})
	}
}

// sqlCode is err's MySQL error code, 0 for none.
func sqlCode(err error) uint16 {
	if e, ok := sqlerr.As(err); ok {
		return e.Code
	}
	return 0
}
