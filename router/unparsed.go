package router

import (
	"context"
	"strings"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// The TiDB parser does not know every MariaDB statement (INSERT ... RETURNING, which GORM
// sends to MariaDB, sequences, ...). In a database with no sharding rules nothing needs to be
// routed or rewritten, so such a statement is sent as it is to the database's shard, which
// either runs it or answers with its own syntax error. In a sharded database it is refused
// with the parser's error: the proxy cannot tell where its rows live.

// passthroughDB returns the database an unparsed statement may be sent to, or nil.
func (s *Session) passthroughDB(snap *rules.Snapshot) *rules.Database {
	var db *rules.Database
	if s.db != "" {
		db, _ = snap.Database(s.db)
	} else {
		db = s.anyDatabase(snap)
	}
	if db == nil || len(db.TableNames()) > 0 {
		return nil
	}
	return db
}

// leavesState guesses whether an unparsed statement may leave state in the backend session
// that the proxy cannot replay; if so the session keeps its connection.
func leavesState(sql string) bool {
	u := strings.ToUpper(sql)
	if strings.Contains(u, "@") || strings.Contains(u, "TEMPORARY") || strings.Contains(u, "GET_LOCK") {
		return true
	}
	f := strings.Fields(u)
	if len(f) == 0 {
		return false
	}
	switch f[0] {
	case "SET", "USE", "LOCK", "PREPARE", "EXECUTE", "DEALLOCATE", "HANDLER":
		return true
	}
	return false
}

// runUnparsed sends sql unparsed to db's shard.
func (s *Session) runUnparsed(ctx context.Context, snap *rules.Snapshot, db *rules.Database, sql string, w wire.PacketWriter) error {
	if err := adminText(sql); err != nil {
		return err
	}
	if leavesState(sql) {
		s.sticky = true
	}
	shard := db.DefaultShard
	if isWriteText(sql) {
		if err := s.checkWrite(ctx, shard); err != nil {
			return err
		}
	}
	return s.run(ctx, snap, shard, sql, false, w)
}

func isWriteText(sql string) bool {
	f := strings.Fields(strings.ToUpper(sql))
	if len(f) == 0 {
		return false
	}
	switch f[0] {
	case "SELECT", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "WITH", "VALUES", "TABLE", "HELP", "DO":
		return false
	}
	return true
}
