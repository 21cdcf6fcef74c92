package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/shardproxy/shardproxy/rules"
)

// checkLive connects to every shard's primary and checks that each physical table the rules
// name exists there, so a missing table is reported before a query fails on it. It returns
// the number of problems found.
func checkLive(ctx context.Context, out io.Writer, snap *rules.Snapshot) int {
	problems := 0
	want := map[*rules.Shard][]string{}
	for _, name := range snap.DatabaseNames() {
		db, _ := snap.Database(name)
		for _, tn := range db.TableNames() {
			for _, p := range db.Table(tn).Placements() {
				want[p.Shard] = append(want[p.Shard], p.Table)
			}
		}
	}
	for _, sh := range snap.Shards() {
		have, err := shardTables(ctx, sh)
		if err != nil {
			fmt.Fprintf(out, "live: shard %s (%s): %v\n", sh.Name, sh.Primary.Addr, err)
			problems++
			continue
		}
		missing := 0
		for _, t := range want[sh] {
			if !have[t] {
				fmt.Fprintf(out, "live: shard %s: table %s.%s is missing\n", sh.Name, sh.Database, t)
				missing++
			}
		}
		if missing == 0 {
			fmt.Fprintf(out, "live: shard %s OK (%d tables expected)\n", sh.Name, len(want[sh]))
		}
		problems += missing
	}
	return problems
}

// shardTables lists the tables of a shard's physical database.
func shardTables(ctx context.Context, sh *rules.Shard) (map[string]bool, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = sh.Primary.User, sh.Primary.Password, "tcp", sh.Primary.Addr
	cfg.Timeout = 5 * time.Second
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", sh.Database)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		have[name] = true
	}
	return have, rows.Err()
}
