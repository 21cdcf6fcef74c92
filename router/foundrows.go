package router

import (
	"strconv"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/wire"
)

// CLIENT_FOUND_ROWS asks the server to report, for UPDATE, the rows the WHERE clause
// matched rather than the rows it changed (and 1 rather than 0 for an INSERT ... ON
// DUPLICATE KEY UPDATE that set a row to its own values). Backend connections are shared by
// every client, so they are opened without the flag; for a client that asked for it, the
// proxy computes the matched count from the server's OK packet, which says both:
//   - UPDATE (one table or several): the info "Rows matched: M  Changed: C  Warnings: W"
//     (MariaDB always sends it): M;
//   - INSERT ... ON DUPLICATE KEY UPDATE of one row (no info): 0 means a duplicate set to
//     its own values, 1 with the flag; 1 (inserted) and 2 (updated) stay;
//   - of several rows (info "Records: R  Duplicates: D  Warnings: W", where D counts the
//     rows changed by the update): each row counts 1 inserted, 2 updated, 1 unchanged, so
//     R + D.
//
// Other statements count the same with and without the flag.

// rowsKind is how a statement's affected rows change under CLIENT_FOUND_ROWS.
type rowsKind int

const (
	rowsPlain  rowsKind = iota // the same either way
	rowsUpdate                 // UPDATE: matched rows
	rowsUpsert                 // INSERT ... ON DUPLICATE KEY UPDATE: unchanged duplicates count 1
)

// rowsKindOf classifies st. INSERT IGNORE ... ON DUPLICATE KEY UPDATE counts its
// duplicates differently and is left as the server reports it.
func rowsKindOf(st ast.StmtNode) rowsKind {
	switch n := st.(type) {
	case *ast.UpdateStmt:
		return rowsUpdate
	case *ast.InsertStmt:
		if len(n.OnDuplicate) > 0 && !n.IgnoreErr && !n.IsReplace {
			return rowsUpsert
		}
	}
	return rowsPlain
}

// foundRows returns the affected rows a client with CLIENT_FOUND_ROWS gets for ok, the
// answer of a connection without the flag to a statement of kind.
func foundRows(kind rowsKind, ok wire.OK) uint64 {
	nums := infoNumbers(ok.Info)
	switch {
	case kind == rowsUpdate && len(nums) == 3:
		return nums[0]
	case kind == rowsUpsert && ok.Info == "" && ok.AffectedRows == 0:
		return 1
	case kind == rowsUpsert && len(nums) == 3:
		return nums[0] + nums[1]
	}
	return ok.AffectedRows
}

// infoNumbers returns the decimal numbers in an OK packet's info text, in order.
func infoNumbers(info string) []uint64 {
	var out []uint64
	for i := 0; i < len(info); {
		if info[i] < '0' || info[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(info) && info[j] >= '0' && info[j] <= '9' {
			j++
		}
		n, err := strconv.ParseUint(info[i:j], 10, 64)
		if err != nil {
			return nil
		}
		out = append(out, n)
		i = j
	}
	return out
}

// foundRowsWriter rewrites the affected rows of the OK packet that answers one statement
// of kind for a client with CLIENT_FOUND_ROWS; n is what it reported.
type foundRowsWriter struct {
	w     wire.PacketWriter
	kind  rowsKind
	done  bool // the first packet passed: only it can be the statement's OK
	found bool // it was an OK packet, and n its rewritten count
	n     uint64
}

func (f *foundRowsWriter) WritePacket(p []byte) error {
	if !f.done && len(p) > 0 && p[0] == wire.OKHeader {
		if ok, err := wire.ParseOK(p); err == nil {
			f.found, f.n = true, foundRows(f.kind, ok)
			if f.n != ok.AffectedRows {
				ok.AffectedRows = f.n
				p = wire.AppendOK(nil, ok)
			}
		}
	}
	f.done = true
	return f.w.WritePacket(p)
}

// runFoundRows runs a single-shard statement of kind through run, giving a client with
// CLIENT_FOUND_ROWS matched rows (ROW_COUNT() agrees).
func (s *Session) runFoundRows(kind rowsKind, w wire.PacketWriter, run func(wire.PacketWriter) error) error {
	f := s.info.foundRowsFor(kind, w)
	if f == nil {
		return run(w)
	}
	err := run(f)
	if err == nil && f.found && s.diag.last.RowCount >= 0 {
		s.diag.last.RowCount = int64(f.n)
	}
	return err
}

// foundRowsFor returns a writer that gives the client info describes matched rows for a
// statement of kind, or nil when the client did not ask for them or kind counts the same.
func (info SessionInfo) foundRowsFor(kind rowsKind, w wire.PacketWriter) *foundRowsWriter {
	if !info.FoundRows || kind == rowsPlain {
		return nil
	}
	return &foundRowsWriter{w: w, kind: kind}
}
