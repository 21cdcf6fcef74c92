package router

import (
	"context"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
)

// readState is what the read/write split and the read retry know of a session: whether the
// statement running may read from a replica, writes nothing, or may run again after a lost
// connection, and the GTID of the session's last write on each shard (read-your-writes).
// The zero value is a fresh session's. Owned by one Session; not safe for concurrent use.
type readState struct {
	replica   rules.ReadSplit   // the statement running may read from a replica
	readOnly  bool              // the statement running writes nothing: no GTID to remember
	retryable bool              // the statement running is a read that may run again after a lost connection (readretry.go)
	gtids     map[string]string // shard name → GTID of the session's last write there
}

// acquireReplica returns a connection from be for a read the split sends to a replica of
// shard (the topology falls back to the primary), or ok false when the statement running
// reads from the primary, be serves no replicas, or the session's last write on shard is
// unknown.
func (rs *readState) acquireReplica(ctx context.Context, be Backend, shard *rules.Shard) (Conn, bool, error) {
	rb, ok := be.(ReplicaBackend)
	after := rs.gtids[shard.Name]
	if !ok || !rs.replica.Enabled || after == gtidUnknown {
		return nil, false, nil
	}
	c, err := rb.AcquireReplica(ctx, shard, ReplicaRead{MaxLag: rs.replica.MaxLag, After: after})
	return c, true, err
}

// trackGTID remembers the GTID a statement just committed on c (read-your-writes): under a
// read/write split (split, the session's setting), after any statement on a primary
// connection that may have written (everything but reads, SHOW, SET and the like: see
// readsOnly), once the backend says no transaction is open, the session reads @@last_gtid on
// the same connection. A failed read keeps the shard's reads on the primary (gtidUnknown).
func (rs *readState) trackGTID(ctx context.Context, split rules.ReadSplit, shard *rules.Shard, c Conn, err error) {
	if err != nil || rs.readOnly || rs.replica.Enabled || c.State().InTransaction() || !split.Enabled {
		return
	}
	if rs.gtids == nil {
		rs.gtids = map[string]string{}
	}
	// @@last_gtid belongs to the backend connection, which other sessions used before: after
	// a statement that wrote nothing it may be older than the session's last write, so the
	// later transaction of each replication domain is kept. A shard whose position is
	// unknown (after a multi-shard write) takes everything the primary has committed.
	row, qerr := engine.QueryRow(ctx, c, "SELECT @@last_gtid, @@gtid_binlog_pos")
	switch {
	case qerr != nil || len(row) != 2 || row[0] == nil || row[1] == nil:
		rs.gtids[shard.Name] = gtidUnknown
	case rs.gtids[shard.Name] == gtidUnknown:
		if *row[1] != "" {
			rs.gtids[shard.Name] = mergeGTIDs("", *row[1])
		}
	case *row[0] != "":
		rs.gtids[shard.Name] = mergeGTIDs(rs.gtids[shard.Name], *row[0])
	}
}

// mergeGTIDs combines two MariaDB GTID positions ("0-1-42,1-2-7"), keeping the higher
// sequence number of each domain; malformed parts are dropped (gtidUnknown if nothing is
// left of a non-empty b).
func mergeGTIDs(a, b string) string {
	type gtid struct {
		text string
		seq  uint64
	}
	by := map[string]gtid{}
	var order []string
	for _, pos := range []string{a, b} {
		for part := range strings.SplitSeq(pos, ",") {
			part = strings.TrimSpace(part)
			f := strings.Split(part, "-")
			if len(f) != 3 {
				continue
			}
			seq, err := strconv.ParseUint(f[2], 10, 64)
			if _, derr := strconv.ParseUint(f[0], 10, 32); err != nil || derr != nil {
				continue
			}
			if _, serr := strconv.ParseUint(f[1], 10, 32); serr != nil {
				continue
			}
			old, seen := by[f[0]]
			if !seen {
				order = append(order, f[0])
			}
			if !seen || seq > old.seq {
				by[f[0]] = gtid{part, seq}
			}
		}
	}
	if len(by) == 0 {
		return gtidUnknown
	}
	out := make([]string, len(order))
	for i, d := range order {
		out[i] = by[d].text
	}
	return strings.Join(out, ",")
}

// forgetGTIDs keeps the reads of the shards of a multi-shard write on their primaries (their
// XA branches report no GTID) until a later write there records one; nothing without a
// read/write split (split, the session's setting).
func (rs *readState) forgetGTIDs(split rules.ReadSplit, bs []plan.Branch) {
	if !split.Enabled {
		return
	}
	if rs.gtids == nil {
		rs.gtids = map[string]string{}
	}
	for _, b := range bs {
		rs.gtids[b.Shard.Name] = gtidUnknown
	}
}

// readsOnly reports whether st changes no data, so commits no GTID of its own (a SELECT
// calling a stored function that writes is not seen: see the README).
func readsOnly(st ast.StmtNode) bool {
	switch st.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt, *ast.ShowStmt, *ast.ExplainStmt, *ast.SetStmt, *ast.UseStmt,
		*ast.KillStmt, *ast.BeginStmt, *ast.SavepointStmt, *ast.ReleaseSavepointStmt:
		return true
	}
	return false
}

// gtidUnknown marks a shard whose last write's GTID the session could not learn: its reads
// stay on the primary until a later write's GTID is known.
const gtidUnknown = "unknown"
