package router

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/shardproxy/shardproxy/router/planner"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// showTables answers SHOW [FULL] TABLES for a database with configured tables: the default
// shard's tables under their logical names (a table-per-slot table's slot tables become the
// logical table once), plus configured tables that have no copy on the default shard.
func (s *Session) showTables(ctx context.Context, snap *rules.Snapshot, db *rules.Database, n *ast.ShowStmt) (localResult, error) {
	if n.Where != nil {
		return localResult{}, sqlerr.NotSupported("SHOW TABLES WHERE on a sharded database (use LIKE)")
	}
	var match func(string) bool
	title := "Tables_in_" + db.Name
	if n.Pattern != nil {
		v, ok := n.Pattern.Pattern.(*test_driver.ValueExpr)
		if !ok {
			return localResult{}, sqlerr.NotSupported("SHOW TABLES LIKE with a non-literal pattern")
		}
		title += " (" + v.GetString() + ")"
		match = planner.LikeRegexp(v.GetString()).MatchString
	}
	shard := db.DefaultShard
	c, err := s.acquire(ctx, snap, shard)
	if err != nil {
		return localResult{}, err
	}
	rows, err := engine.QueryRows(ctx, c, "SHOW FULL TABLES")
	if err = s.finish(shard, c, engine.Outcome{Status: s.status}, err); err != nil {
		return localResult{}, err
	}
	kinds := map[string]string{}
	for _, r := range rows {
		if len(r) < 2 || r[0] == nil || r[1] == nil {
			continue
		}
		kinds[logicalTable(db, *r[0])] = *r[1]
	}
	for _, name := range db.TableNames() {
		if _, ok := kinds[name]; !ok {
			kinds[name] = "BASE TABLE"
		}
	}
	var out [][]*string
	for _, name := range slices.Sorted(maps.Keys(kinds)) {
		if match != nil && !match(name) {
			continue
		}
		row := []*string{&name}
		if n.Full {
			kind := kinds[name]
			row = append(row, &kind)
		}
		out = append(out, row)
	}
	cols := []wire.Column{{Schema: "information_schema", Table: "TABLE_NAMES", Name: title, OrgName: "TABLE_NAME",
		Charset: 45, Length: 256, Type: mysql.MYSQL_TYPE_VAR_STRING, Flags: mysql.NOT_NULL_FLAG}}
	if n.Full {
		cols = append(cols, wire.Column{Schema: "information_schema", Table: "TABLE_NAMES", Name: "Table_type", OrgName: "TABLE_TYPE",
			Charset: 45, Length: 256, Type: mysql.MYSQL_TYPE_VAR_STRING, Flags: mysql.NOT_NULL_FLAG})
	}
	return localResult{cols: cols, rows: out}, nil
}

// logicalTable maps a physical table name to its logical table (accounts_0003 → accounts
// when accounts has a table per slot).
func logicalTable(db *rules.Database, phys string) string {
	i := strings.LastIndexByte(phys, '_')
	if i < 0 || len(phys)-i-1 != 4 {
		return phys
	}
	if _, err := strconv.Atoi(phys[i+1:]); err != nil {
		return phys
	}
	if t := db.Table(phys[:i]); db.Configured(t.Name) && t.TablePerSlot {
		return t.Name
	}
	return phys
}

// localResult is a result the proxy computes itself.
type localResult struct {
	cols []wire.Column
	rows [][]*string
}

// write sends the result in the text protocol, or the binary one for prepared statements.
func (r localResult) write(w wire.PacketWriter, status uint16, binary bool) error {
	if !binary {
		return wire.WriteTextResult(w, r.cols, r.rows, status)
	}
	buf := wire.AppendLenencInt(nil, uint64(len(r.cols)))
	if err := w.WritePacket(buf); err != nil {
		return err
	}
	for _, c := range r.cols {
		if err := w.WritePacket(wire.AppendColumnDef(buf[:0], c)); err != nil {
			return err
		}
	}
	if err := w.WritePacket(wire.AppendEOF(buf[:0], 0, status)); err != nil {
		return err
	}
	for _, row := range r.rows {
		if err := w.WritePacket(wire.AppendBinaryTextRow(buf[:0], row)); err != nil {
			return err
		}
	}
	return w.WritePacket(wire.AppendEOF(buf[:0], 0, status))
}
