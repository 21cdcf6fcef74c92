package planner

import (
	"regexp"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/rules"
)

// The read/write split: whether a statement on one shard may read from a replica; and the
// read retry: whether a read may run again after its backend connection broke.

// primaryHint matches the optimizer-hint comment that keeps a read on the primary:
// SELECT /*+ PRIMARY */ ... (any other hints may share the comment).
var primaryHint = regexp.MustCompile(`(?is)/\*\+[^*]*\bPRIMARY\b[^*]*\*/`)

// sideEffectFuncs are functions whose result depends on, or changes, the backend session or
// the primary's state: a statement calling one stays on the primary.
var sideEffectFuncs = map[string]bool{
	"get_lock": true, "release_lock": true, "release_all_locks": true, "is_free_lock": true, "is_used_lock": true,
	"last_insert_id": true, "row_count": true, "found_rows": true, "connection_id": true,
	"nextval": true, "lastval": true, "setval": true, "next_value_for": true,
	"master_gtid_wait": true, "master_pos_wait": true, "sleep": true, "benchmark": true,
	"load_file": true,
}

// readRole decides where a single-shard statement goes under the session's read/write
// split: RoleReplica only for a plain SELECT (or UNION of them) outside a transaction and
// without sticky session state, with no locking clause (FOR UPDATE, LOCK IN SHARE MODE), no
// INTO, no user variable, no function with side effects or session-bound results, and no
// /*+ PRIMARY */ hint in text. Everything else: RolePrimary.
func readRole(st ast.StmtNode, text string, split rules.ReadSplit, inTxn, sticky bool) rules.Role {
	if !split.Enabled || inTxn || sticky {
		return rules.RolePrimary
	}
	switch st.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt:
	default:
		return rules.RolePrimary
	}
	if primaryHint.MatchString(text) {
		return rules.RolePrimary
	}
	v := &replicaSafe{ok: true}
	st.Accept(v)
	if !v.ok {
		return rules.RolePrimary
	}
	return rules.RoleReplica
}

// replicaSafe walks a SELECT and clears ok at anything that must run on the primary.
type replicaSafe struct{ ok bool }

func (v *replicaSafe) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.SelectStmt:
		if x.LockInfo != nil && x.LockInfo.LockType != ast.SelectLockNone {
			v.ok = false
		}
		if x.SelectIntoOpt != nil || x.SelectStmtOpts != nil && x.SelectStmtOpts.CalcFoundRows {
			v.ok = false
		}
	case *ast.VariableExpr:
		if !x.IsSystem {
			v.ok = false
		}
	case *ast.FuncCallExpr:
		if sideEffectFuncs[x.FnName.L] {
			v.ok = false
		}
	}
	return n, !v.ok
}

func (v *replicaSafe) Leave(n ast.Node) (ast.Node, bool) { return n, v.ok }

// ReadView is what the read/write split reads of the session: its user and current
// database, whether a transaction is open or a connection pinned (InTxn), and whether it
// keeps state on its connections (Held: sticky session state, table locks). The session
// builds it alone on the paths every statement takes, without the rest of its planner view.
type ReadView struct {
	User, DB    string
	InTxn, Held bool
}

// ReadView is the part of pl the read/write split reads.
func (pl *Planner) ReadView() ReadView {
	return ReadView{User: pl.User, DB: pl.DB, InTxn: pl.InTxn, Held: pl.Sticky || pl.Locked}
}

// StatementSplit is the read/write split the session applies to st: its user's or current
// database's setting when readRole sends st to a replica, else the zero value (primary).
func (v ReadView) StatementSplit(snap *rules.Snapshot, st ast.StmtNode, text string) rules.ReadSplit {
	split := SplitSetting(snap, v.User, v.DB)
	if readRole(st, text, split, v.InTxn, v.Held) != rules.RoleReplica {
		return rules.ReadSplit{}
	}
	return split
}

// ReplicaSafe reports whether st, prepared with text, is a read a replica may serve
// whatever the session's state (checked again at each execution: PreparedSplit).
func ReplicaSafe(st ast.StmtNode, text string) bool {
	return readRole(st, text, rules.ReadSplit{Enabled: true}, false, false) == rules.RoleReplica
}

// PreparedSplit is StatementSplit for an execution of a prepared statement whose text is
// replicaOK (ReplicaSafe).
func (v ReadView) PreparedSplit(snap *rules.Snapshot, replicaOK bool) rules.ReadSplit {
	if !replicaOK || v.InTxn || v.Held {
		return rules.ReadSplit{}
	}
	return SplitSetting(snap, v.User, v.DB)
}

// SplitSetting is the read/write split of user in current database db ("" for none).
func SplitSetting(snap *rules.Snapshot, user, db string) rules.ReadSplit {
	u, _ := snap.User(user)
	var d *rules.Database
	if db != "" {
		d, _ = snap.Database(db)
	}
	return rules.SplitFor(u, d)
}

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

// RetryableRead reports whether st is a read that may run a second time when its backend
// connection breaks before any of its answer reached the client: SHOW, or a SELECT (UNION)
// without locking clause, INTO or user variable (as replicaSafe) that calls only functions of
// pureFuncs, so no stored function that might write. Whether the session's state allows the retry is checked when it
// runs (the session's retryRead).
func RetryableRead(st ast.StmtNode) bool {
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
