package router

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// TestSessionReturning: in a sharded database an INSERT/DELETE ... RETURNING is routed and
// renamed like the statement without the clause, and reaches the shard with the clause.
func TestSessionReturning(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, shardedRouter(t, be), "app", 1)
	s.db = "shop"
	ctx := context.Background()
	var w clientRecorder
	exec(t, s, "INSERT INTO accounts (account_id, owner) VALUES (3, 'returning') RETURNING account_id, `owner`", &w)
	exec(t, s, "DELETE FROM orders WHERE user_id = 1 RETURNING *", &w)
	wantLog(t, be,
		"s1#1: USE shop_s1",
		"s1#1: INSERT INTO `accounts_0003` (`account_id`,`owner`) VALUES (3,'returning') RETURNING account_id, `owner`",
		"s1#1: DELETE FROM orders WHERE user_id = 1 RETURNING *",
	)
	for _, sql := range []string{
		"INSERT INTO accounts (account_id) VALUES (1), (2) RETURNING account_id", // two shards
		"DELETE FROM accounts RETURNING account_id",                              // every shard
	} {
		if err := s.Query(ctx, sql, false, &w); sqlCode(err) != sqlerr.ErNotSupportedYet {
			t.Errorf("%s: %v, want 1235", sql, err)
		}
	}
	if err := s.Query(ctx, "INSERT INTO accounts VALUES (1) RETRNING x", false, &w); sqlCode(err) != sqlerr.ErParse {
		t.Errorf("a syntax error without RETURNING: %v, want 1064", err)
	}

	st, err := s.Prepare(ctx, "INSERT INTO accounts (account_id, owner) VALUES (?, 'x') RETURNING account_id")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Execute(ctx, st, []wire.Param{intParam(5)}, &w); err != nil {
		t.Fatal(err)
	}
	wantLog(t, be,
		"s0#2: USE shop_s0",
		"s0#2: PREPARE INSERT INTO `accounts_0000` (`account_id`,`owner`) VALUES (?,'x') RETURNING account_id",
		"s2#3: USE shop_s2",
		"s2#3: PREPARE INSERT INTO `accounts_0005` (`account_id`,`owner`) VALUES (?,'x') RETURNING account_id",
		"s2#3: EXECUTE 2 "+fmt.Sprintf("% x", append([]byte{0, 1, 0x08, 0}, binary.LittleEndian.AppendUint64(nil, 5)...)),
	)
}
