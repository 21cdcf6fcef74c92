package router

import (
	"context"
	"errors"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/router/plan"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// pureFuncs are the built-in functions a retried read may call: their result depends only on
// their arguments, the clock or the server's settings (not on the backend session's history,
// as LAST_INSERT_ID or FOUND_ROWS do), and they change nothing. A call to any
// other function (a stored function, which may write; one this list does not know) keeps a
// read from being retried after a lost connection.
var pureFuncs = map[string]bool{
	// control flow, comparison, casts
	"if": true, "ifnull": true, "nullif": true, "coalesce": true, "greatest": true, "least": true,
	"isnull": true, "interval": true, "cast": true, "convert": true, "binary": true,
	// strings
	"concat": true, "concat_ws": true, "length": true, "char_length": true, "character_length": true,
	"octet_length": true, "bit_length": true, "lower": true, "lcase": true, "upper": true, "ucase": true,
	"substring": true, "substr": true, "mid": true, "left": true, "right": true, "trim": true, "ltrim": true,
	"rtrim": true, "replace": true, "repeat": true, "reverse": true, "lpad": true, "rpad": true,
	"locate": true, "instr": true, "position": true, "field": true, "find_in_set": true, "elt": true,
	"hex": true, "unhex": true, "ascii": true, "ord": true, "char": true, "space": true, "strcmp": true,
	"format": true, "quote": true, "substring_index": true, "insert": true, "md5": true, "sha1": true,
	"sha": true, "sha2": true, "crc32": true, "to_base64": true, "from_base64": true,
	"weight_string": true, "collation": true, "charset": true,
	// numbers
	"abs": true, "ceil": true, "ceiling": true, "floor": true, "round": true, "truncate": true, "mod": true,
	"pow": true, "power": true, "sqrt": true, "exp": true, "ln": true, "log": true, "log2": true, "log10": true,
	"sign": true, "pi": true, "rand": true, "conv": true, "bin": true, "oct": true,
	// dates and times
	"now": true, "current_timestamp": true, "localtime": true, "localtimestamp": true, "sysdate": true,
	"curdate": true, "current_date": true, "curtime": true, "current_time": true, "utc_timestamp": true,
	"utc_date": true, "utc_time": true, "unix_timestamp": true, "from_unixtime": true, "date": true,
	"time": true, "year": true, "month": true, "day": true, "dayofmonth": true, "dayofweek": true,
	"dayofyear": true, "hour": true, "minute": true, "second": true, "microsecond": true, "week": true,
	"weekday": true, "date_add": true, "date_sub": true, "adddate": true, "subdate": true, "datediff": true,
	"timestampdiff": true, "timestampadd": true, "date_format": true, "str_to_date": true,
	"last_day": true, "makedate": true, "extract": true, "to_days": true, "from_days": true,
	// the server and the session's settings (not its history)
	"version": true, "database": true, "schema": true, "user": true, "current_user": true,
	"session_user": true, "system_user": true, "sleep": true, "benchmark": true,
	// JSON
	"json_extract": true, "json_unquote": true, "json_object": true, "json_array": true,
	"json_contains": true, "json_length": true, "json_valid": true, "json_value": true,
}

// retryableRead reports whether st is a read that may run a second time when its backend
// connection breaks before any of its answer reached the client: SHOW, or a SELECT (UNION)
// without locking clause, INTO or user variable (as replicaSafe) that calls only functions of
// pureFuncs, so no stored function that might write. Whether the session's state allows the retry is checked when it
// runs (retryRead).
func retryableRead(st ast.StmtNode) bool {
	switch st.(type) {
	case *ast.ShowStmt:
		return true
	case *ast.SelectStmt, *ast.SetOprStmt:
	default:
		return false
	}
	v := &pureRead{safe: replicaSafe{ok: true}}
	st.Accept(v)
	return v.safe.ok
}

// pureRead clears safe.ok at a function call outside pureFuncs, and where replicaSafe does
// at anything else (a locking clause, INTO, a user variable).
type pureRead struct{ safe replicaSafe }

func (v *pureRead) Enter(n ast.Node) (ast.Node, bool) {
	if f, ok := n.(*ast.FuncCallExpr); ok {
		if f.Schema.L != "" || !pureFuncs[f.FnName.L] {
			v.safe.ok = false
		}
		return n, !v.safe.ok
	}
	return v.safe.Enter(n)
}

func (v *pureRead) Leave(n ast.Node) (ast.Node, bool) { return v.safe.Leave(n) }

// retryRead runs attempt, writing to w, and runs it once more when the statement is a
// retryable read (s.reads.retryable: retryableRead), the session holds no backend state (no
// transaction, no kept connection, no sticky state, no table locks), and its backend
// connection broke before any packet of the answer reached the client, with time left. The
// second attempt acquires a fresh connection through the topology, so it may wait in the
// failover buffer for a shard's new primary. what names the statement's target in the log.
func (s *Session) retryRead(ctx context.Context, what string, w wire.PacketWriter, attempt func(wire.PacketWriter) error) error {
	if !s.reads.retryable || !s.mayRetry() {
		return attempt(w)
	}
	cw := &countingWriter{w: w}
	err := attempt(cw)
	if err == nil || cw.n > 0 || !errors.Is(err, engine.ErrBackendIO) || errors.Is(err, sqlerr.ErrFatal) ||
		ctx.Err() != nil || engine.DeadlinePassed(ctx) || !s.mayRetry() {
		return err
	}
	s.r.log.Debug("retrying a read on a fresh backend connection", "conn_id", s.info.ConnID, "shard", what, "err", err)
	return attempt(w)
}

// mayRetry reports whether the session keeps no state on backend connections that a second
// attempt of a read would miss or lose.
func (s *Session) mayRetry() bool {
	return len(s.pinned) == 0 && !s.sticky && !s.locks.locked() && !s.inTransaction() && !s.txnOpen()
}

// runScatterRead runs a scatter SELECT under the session's read/write split (each shard's
// part goes to a replica of that shard fit for the read: acquireReplica, with the session's
// last GTID there) and retries it once after a lost backend connection (retryRead).
// split is the statement's split (statementSplit or preparedSplit).
func (s *Session) runScatterRead(ctx context.Context, snap *rules.Snapshot, sp *plan.Scatter, split rules.ReadSplit, more bool, w wire.PacketWriter, bin bool) error {
	s.reads.replica = split
	defer func() { s.reads.replica = rules.ReadSplit{} }()
	return s.retryRead(ctx, "scatter", w, func(w wire.PacketWriter) error {
		return s.runScatter(ctx, snap, sp, more, w, bin)
	})
}

// prepareBackend prepares sql on a connection to shard, describing it into k, and gives the
// connection back. COM_STMT_PREPARE runs nothing, so when the connection breaks during it
// and the session holds no backend state, sql is prepared once more on a fresh connection
// (through the topology: it may wait in the failover buffer), whatever the statement.
func (s *Session) prepareBackend(ctx context.Context, snap *rules.Snapshot, shard *rules.Shard, sql string, k *engine.Collector) (engine.Stmt, error) {
	for attempt := 0; ; attempt++ {
		k.Pkts = k.Pkts[:0]
		c, err := s.acquire(ctx, snap, shard)
		if err != nil {
			return engine.Stmt{}, err
		}
		it := s.intr.watchOnDone(ctx, shard, c)
		bs, err := engine.Prepare(ctx, c, sql, k)
		it.Stop()
		err = s.finish(shard, c, engine.Outcome{Status: s.status}, err)
		if err == nil || attempt > 0 || !errors.Is(err, engine.ErrBackendIO) || errors.Is(err, sqlerr.ErrFatal) ||
			ctx.Err() != nil || engine.DeadlinePassed(ctx) || !s.mayRetry() {
			return bs, err
		}
		s.r.log.Debug("preparing again on a fresh backend connection", "conn_id", s.info.ConnID, "shard", shard.Name, "err", err)
	}
}
