package planner

import (
	"strconv"
	"strings"
	"time"

	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
)

// DefaultRestoreFlags are the flags statements are restored with under the default
// sql_mode: string literals stay byte-exact (see DEPENDENCIES.md).
const DefaultRestoreFlags = format.DefaultRestoreFlags | format.RestoreStringEscapeBackslash | format.RestoreStringWithoutDefaultCharset

// Planner plans statements for one session: a read-only copy of what planning reads of the
// session, and nothing else. It does no I/O and changes nothing of the session; a statement
// is planned against the snapshot the statement runs under (the planner holds no other).
type Planner struct {
	DB           string // the session's current logical database, "" for none
	User         string
	ConnID       uint32 // CONNECTION_ID()
	LastInsertID uint64
	Diag         Diagnostics // of the previous statement (ROW_COUNT(), @@warning_count)
	Sticky       bool        // the backend connection knows FOUND_ROWS() better
	RestoreFlags format.RestoreFlags
	Describing   bool          // at prepare time: describe a scatter statement from one shard
	Deadline     time.Duration // the statement deadline @@max_execution_time shows
	Version      string        // VERSION() and @@version as the proxy announces them
	MaxPkt       int64         // @@max_allowed_packet as the proxy announces it
	Lists        BigLists      // the literal lists cut out of the statement before parsing
	Locked       bool          // the session holds LOCK TABLES on sharded tables (lock.go)
	InTxn        bool          // the session is in a transaction or keeps a backend connection pinned: its reads stay on the primary (readsplit.go)
	Unpruned     bool          // a scatter template: a SELECT goes to every slot, whatever its key values (scatter_prepared.go)
	Slots        []int         // a scatter template of tables per slot: the slots it goes to (nil: every slot)
}

// VarAliases maps MySQL 8 variable names to the names MariaDB 10.x knows.
var VarAliases = map[string]string{
	"transaction_isolation": "tx_isolation",
	"transaction_read_only": "tx_read_only",
}

// Session variables the proxy owns: they set the session's deadline and are never sent to a
// backend (MariaDB does not know max_execution_time, and enforcing max_statement_time there
// would answer 1969 where the client must get 3024).
const (
	VarMaxExecutionTime = "max_execution_time" // milliseconds
	VarMaxStatementTime = "max_statement_time" // seconds, fractional
)

// DeadlineVarValue answers @@max_execution_time (ms) and @@max_statement_time (seconds) with
// the deadline the session's statements get when they carry no hint.
func (pl *Planner) DeadlineVarValue(name string) any {
	d := pl.Deadline
	if strings.EqualFold(name, VarMaxStatementTime) {
		// A decimal with six places, as MariaDB shows it (0.200000).
		dec := new(test_driver.MyDecimal)
		if err := dec.FromString([]byte(strconv.FormatFloat(d.Seconds(), 'f', 6, 64))); err == nil {
			return dec
		}
		return d.Seconds()
	}
	return uint64(d / time.Millisecond)
}
