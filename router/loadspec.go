package router

import (
	"context"
	"strings"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/infile"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// loadSpec is how the rows of a LOAD DATA file into a sharded table are found and placed:
// the file's layout, how many fields a row has and which one is the shard key, and the
// character set its bytes are in.
type loadSpec struct {
	table   *rules.Table
	format  infile.Format
	ignore  uint64 // IGNORE n LINES, skipped by the proxy
	fields  int
	key     int
	charset string // as MariaDB names it; written into every shard's statement
}

// loadFormat is the layout a LOAD DATA statement names, MariaDB's defaults elsewhere.
func loadFormat(n *ast.LoadDataStmt) infile.Format {
	f := infile.Default
	if fi := n.FieldsInfo; fi != nil {
		setIf(&f.FieldTerm, fi.Terminated)
		setIf(&f.Enclosed, fi.Enclosed)
		setIf(&f.Escaped, fi.Escaped)
	}
	if li := n.LinesInfo; li != nil {
		setIf(&f.LineStart, li.Starting)
		setIf(&f.LineTerm, li.Terminated)
	}
	return f
}

func setIf(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

// loadSpecOf checks that a LOAD DATA into sharded table t can be split as MariaDB would
// read it, before any of the file is asked for: what cannot is refused with 1235 naming it.
// It reads the table's columns (when the statement lists none) and the database's character
// set (when the statement names none) from the table's first copy; the checks are
// newLoadSpec's, placeKey's and setCharset's.
func (s *Session) loadSpecOf(ctx context.Context, snap *rules.Snapshot, t *rules.Table, n *ast.LoadDataStmt) (*loadSpec, error) {
	sp, names, err := newLoadSpec(t, n)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		cols, err := s.tableColumns(ctx, snap, t.DB, t)
		if err != nil {
			return nil, err
		}
		for _, c := range cols {
			names = append(names, strings.ToLower(c))
		}
	}
	if err := sp.placeKey(names); err != nil {
		return nil, err
	}
	cs := ""
	if n.Charset != nil {
		cs = strings.ToLower(*n.Charset)
	} else if cs, err = s.databaseCharset(ctx, snap, t); err != nil {
		return nil, err
	}
	return sp, sp.setCharset(cs)
}

// newLoadSpec checks what a LOAD DATA into sharded table t says of the file's layout and
// its shard key, and returns the fields it names (lower-cased column names, "" for a
// @variable; none when it lists no columns).
func newLoadSpec(t *rules.Table, n *ast.LoadDataStmt) (*loadSpec, []string, error) {
	if n.Format != nil || len(n.Options) > 0 || n.FieldsInfo != nil && n.FieldsInfo.DefinedNullBy != nil {
		return nil, nil, refuseLoad(t, "FORMAT, DEFINED NULL BY or WITH options (not MariaDB's syntax)")
	}
	sp := &loadSpec{table: t, format: loadFormat(n), key: -1}
	if err := sp.format.Check(); err != nil {
		return nil, nil, refuseLoad(t, err.Error())
	}
	if n.IgnoreLines != nil {
		sp.ignore = *n.IgnoreLines
	}
	for _, a := range n.ColumnAssignments {
		if a.Column != nil && a.Column.Name.L == t.Key {
			return nil, nil, refuseLoad(t, "its shard key "+t.Key+" set by a SET clause (the proxy must read the key from the file)")
		}
	}
	names := make([]string, 0, len(n.ColumnsAndUserVars))
	for _, c := range n.ColumnsAndUserVars {
		if c.ColumnName == nil {
			names = append(names, "") // a @variable
			continue
		}
		names = append(names, c.ColumnName.Name.L)
	}
	return sp, names, nil
}

// placeKey finds the shard key among the fields of a row (names: lower-cased column names,
// "" for a @variable).
func (sp *loadSpec) placeKey(names []string) error {
	for i, c := range names {
		if c == sp.table.Key {
			sp.key = i
		}
	}
	if sp.key < 0 {
		return refuseLoad(sp.table, "a column list without its shard key column "+sp.table.Key)
	}
	sp.fields = len(names)
	return nil
}

// setCharset sets the character set the file is read in (lower-cased, as MariaDB names it),
// one whose bytes the proxy reads as MariaDB does.
func (sp *loadSpec) setCharset(cs string) error {
	if !loadCharsets[cs] {
		return refuseLoad(sp.table, "CHARACTER SET "+cs+" (the proxy reads files in utf8mb4, utf8mb3, latin1, ascii or binary)")
	}
	sp.charset = cs
	return nil
}

// refuseLoad is the refusal of a LOAD DATA into t with what.
func refuseLoad(t *rules.Table, what string) error {
	return sqlerr.NotSupported("LOAD DATA LOCAL INFILE into sharded table %s with %s", t.Name, what)
}

// loadCharsets are the character sets whose files the proxy reads byte by byte exactly as
// MariaDB does (infile's separators are ASCII): UTF-8 and single-byte sets.
var loadCharsets = map[string]bool{"utf8mb4": true, "utf8mb3": true, "utf8": true, "latin1": true, "ascii": true, "binary": true}

// databaseCharset is the character set MariaDB reads a LOAD DATA file in when the statement
// names none (character_set_database), as t's first copy's server has it.
func (s *Session) databaseCharset(ctx context.Context, snap *rules.Snapshot, t *rules.Table) (string, error) {
	pl := planner.FirstCopy(t)
	c, err := s.acquire(ctx, snap, pl.Shard)
	if err != nil {
		return "", err
	}
	rows, err := engine.QueryRows(ctx, c, "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '"+escapeString(pl.Shard.Database)+"'")
	if err = s.finish(pl.Shard, c, engine.Outcome{Status: s.status}, err); err != nil {
		return "", err
	}
	if len(rows) != 1 || len(rows[0]) != 1 || rows[0][0] == nil {
		return "", sqlerr.New(sqlerr.ErBadDB, "Unknown database '%s'", t.DB.Name)
	}
	return strings.ToLower(*rows[0][0]), nil
}

// slot places a row of the file: its key field read as the text an INSERT of that value
// would give the router (exprValue: a string literal), decoded from the file's character
// set. A row that names no slot is refused as MariaDB refuses a row of a partitioned table:
// a NULL (or missing) key with 1048, another value with 1526.
func (sp *loadSpec) slot(row infile.Row) (int, error) {
	t := sp.table
	if row.KeyMissing || row.KeyNull {
		return 0, sqlerr.New(erBadNull, "Column '%s' cannot be null: row %d of the file has no value for the shard key of %s", t.Key, row.Line, t.Name)
	}
	slot, err := t.Scheme.Func.Slot(rules.StrValue(decodeLoadText(sp.charset, row.Key)))
	if err != nil {
		return 0, sqlerr.New(erNoPartitionForValue, "Table has no partition for value %q: shard key %s of %s at row %d of the file: %v", row.Key, t.Key, t.Name, row.Line, err)
	}
	return slot, nil
}

// MariaDB's ER_BAD_NULL_ERROR and ER_NO_PARTITION_FOR_GIVEN_VALUE.
const (
	erBadNull             = 1048
	erNoPartitionForValue = 1526
)

// decodeLoadText turns b, in character set cs, into UTF-8 text. MariaDB's latin1 is
// Windows-1252 with its five unassigned bytes read as the C1 controls of the same value.
func decodeLoadText(cs string, b []byte) string {
	if cs != "latin1" {
		return string(b)
	}
	var sb strings.Builder
	for _, c := range b {
		switch {
		case c < 0x80 || c >= 0xa0:
			sb.WriteRune(rune(c))
		default:
			sb.WriteRune(cp1252[c-0x80])
		}
	}
	return sb.String()
}

// cp1252 maps the bytes 0x80-0x9F of MariaDB's latin1.
var cp1252 = [32]rune{
	'€', 0x81, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0x8d, 'Ž', 0x8f,
	0x90, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0x9d, 'ž', 'Ÿ',
}
