package planner

import (
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// What the Planner answers of the session it is a view of, for the session's own use.

// VariableShard is the shard whose backend session holds the session's user variables: the
// default shard of its database (SET @v goes there), or of the first database its user may
// use when it has none.
func (pl *Planner) VariableShard(snap *rules.Snapshot) (*rules.Shard, error) {
	var db *rules.Database
	if pl.DB != "" {
		db, _ = snap.Database(pl.DB)
	} else {
		db = pl.AnyDatabase(snap)
	}
	if db == nil {
		return nil, sqlerr.New(sqlerr.ErNoDB, "No database selected")
	}
	return db.DefaultShard, nil
}

// SessionValue is the session's value name, as planning writes it (Analyzer.Leave) and a
// bound route fills it in at each execution; ok is false for one a bound route does not
// fill in (diagnostics).
func (pl *Planner) SessionValue(name string) (any, bool) {
	switch name {
	case "last_insert_id":
		return pl.LastInsertID, true
	case "database", "schema":
		if pl.DB == "" {
			return nil, true
		}
		return pl.DB, true
	case "connection_id":
		return uint64(pl.ConnID), true
	case "version":
		return pl.Version, true
	case VarMaxExecutionTime, VarMaxStatementTime:
		return pl.DeadlineVarValue(name), true
	}
	return nil, false
}
