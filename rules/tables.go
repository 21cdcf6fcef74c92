package rules

import (
	"fmt"
	"strconv"
	"strings"
)

// Scheme is a validated sharding scheme: its function and the shard of each slot.
type Scheme struct {
	Name   string
	Func   Func
	shards []*Shard // by slot
}

// SlotShard returns the shard holding slot.
func (s *Scheme) SlotShard(slot int) *Shard { return s.shards[slot] }

// Shards returns the distinct shards of the scheme, in slot order.
func (s *Scheme) Shards() []*Shard {
	var out []*Shard
	seen := map[*Shard]bool{}
	for _, sh := range s.shards {
		if !seen[sh] {
			seen[sh] = true
			out = append(out, sh)
		}
	}
	return out
}

// Table is a logical table's placement.
type Table struct {
	Name         string // as configured (MySQL table names are compared case-sensitively here)
	Kind         string // KindSharded, KindBroadcast or KindSingle
	Key          string // lower-cased shard key column (sharded)
	Scheme       *Scheme
	TablePerSlot bool
	DB           *Database
	// ForbidFullTableWrites refuses UPDATE and DELETE without WHERE on a sharded or
	// broadcast table (full_table_writes: forbid).
	ForbidFullTableWrites bool
}

// PhysicalName is the backend table holding slot's rows.
func (t *Table) PhysicalName(slot int) string {
	if !t.TablePerSlot {
		return t.Name
	}
	return fmt.Sprintf("%s_%04d", t.Name, slot)
}

// Placement is one physical copy of a table: a shard and a physical table name.
type Placement struct {
	Shard *Shard
	Table string
	Slot  int // -1 for broadcast and single tables
}

// Placements lists every physical table of t: each slot's for a sharded table, one per
// shard of the database for a broadcast table, the default shard's for a single table.
func (t *Table) Placements() []Placement {
	switch t.Kind {
	case KindSharded:
		out := make([]Placement, t.Scheme.Func.Slots())
		for i := range out {
			out[i] = Placement{Shard: t.Scheme.SlotShard(i), Table: t.PhysicalName(i), Slot: i}
		}
		if !t.TablePerSlot {
			return dedupByShard(out)
		}
		return out
	case KindBroadcast:
		var out []Placement
		for _, sh := range t.DB.Shards() {
			out = append(out, Placement{Shard: sh, Table: t.Name, Slot: -1})
		}
		return out
	}
	return []Placement{{Shard: t.DB.DefaultShard, Table: t.Name, Slot: -1}}
}

func dedupByShard(ps []Placement) []Placement {
	var out []Placement
	seen := map[*Shard]bool{}
	for _, p := range ps {
		if !seen[p.Shard] {
			seen[p.Shard] = true
			out = append(out, p)
		}
	}
	return out
}

func (s *Snapshot) addSchemes(cs []SchemeConfig) error {
	s.schemes = map[string]*Scheme{}
	for i, c := range cs {
		if c.Name == "" {
			return fmt.Errorf("%w: schemes[%d]: name is empty", ErrInvalid, i)
		}
		if _, dup := s.schemes[c.Name]; dup {
			return fmt.Errorf("%w: scheme %q: defined twice", ErrInvalid, c.Name)
		}
		sc, err := s.buildScheme(c)
		if err != nil {
			return fmt.Errorf("%w: scheme %q: %w", ErrInvalid, c.Name, err)
		}
		s.schemes[c.Name] = sc
	}
	return nil
}

func (s *Snapshot) buildScheme(c SchemeConfig) (*Scheme, error) {
	sc := &Scheme{Name: c.Name}
	switch c.Function {
	case "hash", "mod":
		if c.Function == "mod" && c.Collation != "" {
			return nil, fmt.Errorf("mod takes integer keys, not a collation")
		}
		if len(c.Ranges) > 0 || c.Unit != "" {
			return nil, fmt.Errorf("%s takes slots and shards, not ranges or unit", c.Function)
		}
		if len(c.Shards) == 0 {
			return nil, fmt.Errorf("no shards")
		}
		n := c.Slots
		if n == 0 {
			n = len(c.Shards)
		}
		if n < len(c.Shards) || n > 1<<16 {
			return nil, fmt.Errorf("slots %d: want between the number of shards (%d) and 65536", n, len(c.Shards))
		}
		shards, err := s.shardList(c.Shards)
		if err != nil {
			return nil, err
		}
		for slot := range n {
			sc.shards = append(sc.shards, shards[slot*len(shards)/n])
		}
		if c.Function == "hash" {
			coll, err := LookupCollation(c.Collation)
			if err != nil {
				return nil, err
			}
			sc.Func = HashFunc{N: n, Collation: coll}
		} else {
			sc.Func = ModFunc{N: n}
		}
	case "range", "date":
		if c.Collation != "" {
			return nil, fmt.Errorf("%s takes no collation (only hash does)", c.Function)
		}
		if len(c.Shards) > 0 || c.Slots != 0 {
			return nil, fmt.Errorf("%s takes ranges, not slots or shards", c.Function)
		}
		if c.Function == "date" {
			switch c.Unit {
			case UnitDay, UnitMonth, UnitYear:
			default:
				return nil, fmt.Errorf("unit %q: want day, month or year", c.Unit)
			}
		} else if c.Unit != "" {
			return nil, fmt.Errorf("range takes no unit")
		}
		rf, shards, err := s.buildRanges(c)
		if err != nil {
			return nil, err
		}
		sc.shards = shards
		if c.Function == "date" {
			sc.Func = DateFunc{Unit: c.Unit, Range: rf}
		} else {
			sc.Func = rf
		}
	default:
		return nil, fmt.Errorf("function %q: want hash, mod, range or date", c.Function)
	}
	return sc, nil
}

func (s *Snapshot) shardList(names []string) ([]*Shard, error) {
	var out []*Shard
	seen := map[string]bool{}
	for _, n := range names {
		sh, ok := s.shards[n]
		if !ok {
			return nil, fmt.Errorf("shard %q is not defined", n)
		}
		if seen[n] {
			return nil, fmt.Errorf("shard %q is listed twice", n)
		}
		seen[n] = true
		out = append(out, sh)
	}
	return out, nil
}

// buildRanges checks that ranges are sorted, disjoint and only open at the ends.
func (s *Snapshot) buildRanges(c SchemeConfig) (RangeFunc, []*Shard, error) {
	if len(c.Ranges) == 0 {
		return RangeFunc{}, nil, fmt.Errorf("no ranges")
	}
	parse := func(v string) (int64, error) {
		if c.Function == "date" {
			t, err := ParseDate(v)
			if err != nil {
				return 0, err
			}
			return DateUnit(t, c.Unit), nil
		}
		return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	}
	var rf RangeFunc
	var shards []*Shard
	for i, r := range c.Ranges {
		var b Bound
		var err error
		if r.From != "" {
			if b.From, err = parse(r.From); err != nil {
				return rf, nil, fmt.Errorf("ranges[%d]: from: %w", i, err)
			}
			b.HasFrom = true
		} else if i > 0 {
			return rf, nil, fmt.Errorf("ranges[%d]: only the first range may have no lower bound", i)
		}
		if r.To != "" {
			if b.To, err = parse(r.To); err != nil {
				return rf, nil, fmt.Errorf("ranges[%d]: to: %w", i, err)
			}
			b.HasTo = true
		} else if i < len(c.Ranges)-1 {
			return rf, nil, fmt.Errorf("ranges[%d]: only the last range may have no upper bound", i)
		}
		if b.HasFrom && b.HasTo && b.From >= b.To {
			return rf, nil, fmt.Errorf("ranges[%d]: from %s is not below to %s", i, r.From, r.To)
		}
		if i > 0 {
			prev := rf.Bounds[i-1]
			if b.From < prev.To {
				return rf, nil, fmt.Errorf("ranges[%d] overlaps ranges[%d] or is out of order", i, i-1)
			}
		}
		sh, ok := s.shards[r.Shard]
		if !ok {
			return rf, nil, fmt.Errorf("ranges[%d]: shard %q is not defined", i, r.Shard)
		}
		rf.Bounds = append(rf.Bounds, b)
		shards = append(shards, sh)
	}
	return rf, shards, nil
}

// addTables places the tables of each database; a shard (a physical database) belongs to
// one logical database.
func (s *Snapshot) addTables(dbs []DatabaseConfig) error {
	if err := s.placeTables(dbs); err != nil {
		return err
	}
	owner := map[*Shard]string{}
	for _, name := range s.dbNames {
		for _, sh := range s.databases[name].shards {
			if o, ok := owner[sh]; ok {
				return fmt.Errorf("%w: shard %q holds rows of databases %q and %q: give each logical database its own shards", ErrInvalid, sh.Name, o, name)
			}
			owner[sh] = name
		}
	}
	return nil
}

func (s *Snapshot) placeTables(dbs []DatabaseConfig) error {
	for _, dc := range dbs {
		db := s.databases[dc.Name]
		db.tables = map[string]*Table{}
		for i, tc := range dc.Tables {
			t, err := s.buildTable(db, tc)
			if err != nil {
				return fmt.Errorf("%w: database %q: tables[%d] %q: %w", ErrInvalid, dc.Name, i, tc.Name, err)
			}
			if _, dup := db.tables[t.Name]; dup {
				return fmt.Errorf("%w: database %q: table %q is defined twice", ErrInvalid, dc.Name, t.Name)
			}
			db.tables[t.Name] = t
			db.tableNames = append(db.tableNames, t.Name)
		}
	}
	return nil
}

func (s *Snapshot) buildTable(db *Database, tc TableConfig) (*Table, error) {
	if tc.Name == "" {
		return nil, fmt.Errorf("name is empty")
	}
	t := &Table{Name: tc.Name, Kind: tc.Kind, DB: db, TablePerSlot: tc.TablePerSlot}
	if t.Kind == "" {
		t.Kind = KindSingle
	}
	policy := tc.FullTableWrites
	if policy == "" {
		policy = s.server.FullTableWrites
	}
	switch policy {
	case "", "allow":
	case "forbid":
		t.ForbidFullTableWrites = true
	default:
		return nil, fmt.Errorf("full_table_writes %q: want allow or forbid", tc.FullTableWrites)
	}
	switch t.Kind {
	case KindSharded:
		if tc.Key == "" {
			return nil, fmt.Errorf("sharded table needs a key column")
		}
		sc, ok := s.schemes[tc.Scheme]
		if !ok {
			return nil, fmt.Errorf("scheme %q is not defined", tc.Scheme)
		}
		t.Key, t.Scheme = strings.ToLower(tc.Key), sc
		for _, sh := range sc.Shards() {
			db.addShard(sh)
		}
	case KindBroadcast, KindSingle:
		if tc.Key != "" || tc.Scheme != "" || tc.TablePerSlot {
			return nil, fmt.Errorf("a %s table takes no key, scheme or table_per_slot", t.Kind)
		}
	default:
		return nil, fmt.Errorf("kind %q: want sharded, broadcast or single", tc.Kind)
	}
	return t, nil
}

// addShard records that the database has rows on sh.
func (d *Database) addShard(sh *Shard) {
	for _, x := range d.shards {
		if x == sh {
			return
		}
	}
	d.shards = append(d.shards, sh)
}

// Table returns the placement of a logical table; tables not configured are single tables
// on the default shard.
func (d *Database) Table(name string) *Table {
	if t, ok := d.tables[name]; ok {
		return t
	}
	return &Table{Name: name, Kind: KindSingle, DB: d}
}

// Configured reports whether name is a configured table.
func (d *Database) Configured(name string) bool {
	_, ok := d.tables[name]
	return ok
}

// TableNames returns the configured tables in config order.
func (d *Database) TableNames() []string { return d.tableNames }

// Shards returns every shard holding the database's rows: the default shard first, then the
// shards of its sharded tables.
func (d *Database) Shards() []*Shard { return d.shards }

// Sharded reports whether any table of the database is sharded.
func (d *Database) Sharded() bool {
	for _, t := range d.tables {
		if t.Kind == KindSharded {
			return true
		}
	}
	return false
}

// Scheme returns the scheme named name.
func (s *Snapshot) Scheme(name string) (*Scheme, bool) { sc, ok := s.schemes[name]; return sc, ok }
