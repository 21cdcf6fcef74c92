package rules

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
)

// ErrNoSlot reports a shard key value that no slot holds (outside every range, or of a type
// the function cannot place).
var ErrNoSlot = errors.New("rules: no slot for value")

// Value is a shard key value as it appears in a statement: an integer, or text (strings,
// decimals, dates). NULL has no slot.
type Value struct {
	Null  bool
	IsInt bool
	Int   int64 // when IsInt
	Str   string
}

// IntValue and StrValue build Values.
func IntValue(v int64) Value { return Value{IsInt: true, Int: v} }

// StrValue builds a text Value.
func StrValue(s string) Value { return Value{Str: s} }

// int returns the value as an integer: text holding a whole number counts, as MySQL compares
// '42' = 42 numerically.
func (v Value) int() (int64, bool) {
	if v.IsInt {
		return v.Int, true
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v.Str), 10, 64)
	return n, err == nil
}

func (v Value) String() string {
	switch {
	case v.Null:
		return "NULL"
	case v.IsInt:
		return strconv.FormatInt(v.Int, 10)
	}
	return strconv.Quote(v.Str)
}

// Func maps a shard key value to a slot in [0, Slots()). Implementations are immutable.
type Func interface {
	Name() string
	Slots() int
	Slot(v Value) (int, error)
}

// HashFunc spreads keys over slots by a stable hash:
//
//	slot = xxHash64(canonical bytes) mod slots
//
// where the canonical bytes of an integer (or of text holding a whole number) are its 8-byte
// little-endian two's complement, and those of other text are its key under Collation
// (MariaDB's WEIGHT_STRING without trailing spaces' weights, see Collation.AppendKey), so
// that keys MariaDB holds equal ('abc', 'ABC ', 'àbc' under utf8mb4_general_ci) land
// together. xxHash64 is the published algorithm with seed 0. The zero Collation is
// utf8mb4_general_ci.
type HashFunc struct {
	N         int
	Collation Collation
}

func (f HashFunc) Name() string { return "hash" }
func (f HashFunc) Slots() int   { return f.N }

// Slot implements Func.
func (f HashFunc) Slot(v Value) (int, error) {
	if v.Null {
		return 0, fmt.Errorf("%w: NULL", ErrNoSlot)
	}
	return int(HashKey(v, f.Collation) % uint64(f.N)), nil
}

// HashKey is the 64-bit hash HashFunc uses for text compared under c.
//
// Text whose key is that of a whole number ('42', ' 42', and under utf8mb4_unicode_ci
// '４２') hashes as the integer, so `id = '42'` finds the row of `id = 42`; the decision is
// taken on the key (Collation.keyInt), so texts MariaDB holds equal decide alike.
func HashKey(v Value, c Collation) uint64 {
	var b [8]byte
	if v.IsInt {
		binary.LittleEndian.PutUint64(b[:], uint64(v.Int))
		return xxhash.Sum64(b[:])
	}
	var buf [128]byte
	key := c.AppendKey(buf[:0], v.Str)
	if n, ok := c.keyInt(key); ok {
		binary.LittleEndian.PutUint64(b[:], uint64(n))
		return xxhash.Sum64(b[:])
	}
	return xxhash.Sum64(key)
}

// ModFunc places integer keys by their remainder: slot = key mod slots (never negative).
type ModFunc struct{ N int }

func (f ModFunc) Name() string { return "mod" }
func (f ModFunc) Slots() int   { return f.N }

// Slot implements Func.
func (f ModFunc) Slot(v Value) (int, error) {
	n, ok := v.int()
	if !ok || v.Null {
		return 0, fmt.Errorf("%w: mod needs an integer key, got %v", ErrNoSlot, v)
	}
	m := n % int64(f.N)
	if m < 0 {
		m += int64(f.N)
	}
	return int(m), nil
}

// Bound is one range of RangeFunc: keys in [From, To) go to its slot; HasFrom/HasTo false
// means unbounded on that side.
type Bound struct {
	From, To       int64
	HasFrom, HasTo bool
}

func (b Bound) contains(n int64) bool {
	return (!b.HasFrom || n >= b.From) && (!b.HasTo || n < b.To)
}

// RangeFunc places integer keys by ranges, one slot per range, ranges sorted and disjoint.
type RangeFunc struct{ Bounds []Bound }

func (f RangeFunc) Name() string { return "range" }
func (f RangeFunc) Slots() int   { return len(f.Bounds) }

// Slot implements Func.
func (f RangeFunc) Slot(v Value) (int, error) {
	n, ok := v.int()
	if !ok || v.Null {
		return 0, fmt.Errorf("%w: range needs an integer key, got %v", ErrNoSlot, v)
	}
	return f.slotOf(n)
}

func (f RangeFunc) slotOf(n int64) (int, error) {
	i, _ := slices.BinarySearchFunc(f.Bounds, n, func(b Bound, n int64) int {
		if b.HasTo && b.To <= n {
			return -1
		}
		return 1
	})
	if i < len(f.Bounds) && f.Bounds[i].contains(n) {
		return i, nil
	}
	return 0, fmt.Errorf("%w: %d is outside every range", ErrNoSlot, n)
}

// SlotsBetween returns the slots whose ranges meet [lo, hi] (inclusive); unbounded sides
// are given by hasLo/hasHi false.
func (f RangeFunc) SlotsBetween(lo, hi int64, hasLo, hasHi bool) []int {
	var out []int
	for i, b := range f.Bounds {
		if hasHi && b.HasFrom && b.From > hi {
			continue
		}
		if hasLo && b.HasTo && b.To <= lo {
			continue
		}
		out = append(out, i)
	}
	return out
}

// Date units of DateFunc.
const (
	UnitDay   = "day"
	UnitMonth = "month"
	UnitYear  = "year"
)

// DateFunc places DATE/DATETIME keys by ranges of dates: the key is truncated to its unit
// (day, month or year) and looked up in ranges of dates, one slot per range.
type DateFunc struct {
	Unit  string
	Range RangeFunc // bounds in unit numbers (see DateUnit)
}

func (f DateFunc) Name() string { return "date" }
func (f DateFunc) Slots() int   { return f.Range.Slots() }

// Slot implements Func.
func (f DateFunc) Slot(v Value) (int, error) {
	if v.Null || v.IsInt {
		return 0, fmt.Errorf("%w: date needs a DATE or DATETIME key, got %v", ErrNoSlot, v)
	}
	t, err := ParseDate(v.Str)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoSlot, err)
	}
	return f.Range.slotOf(DateUnit(t, f.Unit))
}

// ParseDate accepts 'YYYY-MM-DD' with an optional time part, as MySQL writes DATE and
// DATETIME values.
func ParseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02 15:04:05.999999", "2006-01-02T15:04:05.999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date", s)
}

// DateUnit numbers t's day (days since 1970-01-01), month (year*12 + month-1) or year.
func DateUnit(t time.Time, unit string) int64 {
	switch unit {
	case UnitDay:
		d := t.Unix() / 86400
		if t.Unix()%86400 < 0 {
			d-- // floor, for dates before 1970
		}
		return d
	case UnitMonth:
		return int64(t.Year())*12 + int64(t.Month()) - 1
	}
	return int64(t.Year())
}
