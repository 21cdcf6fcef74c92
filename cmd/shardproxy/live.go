package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/shardproxy/shardproxy/router/txn"
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
	return problems + checkXA(ctx, out, snap)
}

// checkXA reports, for every server holding a shard of a database of several shards, the
// state of the XA decision log and the proxy's prepared branches waiting for recovery. A
// missing decision log is not a problem (serve creates it at startup); XA RECOVER failing is.
func checkXA(ctx context.Context, out io.Writer, snap *rules.Snapshot) int {
	problems := 0
	for _, sh := range txn.XAServers(snap) {
		msg, err := xaState(ctx, sh)
		if err != nil {
			fmt.Fprintf(out, "live: backend %s (%s): XA: %v\n", sh.Primary.Name, sh.Primary.Addr, err)
			problems++
			continue
		}
		fmt.Fprintf(out, "live: backend %s: %s\n", sh.Primary.Name, msg)
	}
	return problems
}

// xaState describes the decision log and the pending proxy branches of sh's server.
func xaState(ctx context.Context, sh *rules.Shard) (string, error) {
	db, err := openBackend(sh)
	if err != nil {
		return "", err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, "XA RECOVER")
	if err != nil {
		return "", fmt.Errorf("XA RECOVER (recovery needs it): %w", err)
	}
	pending := 0
	for rows.Next() {
		var format, gl, bl int
		var data []byte
		if err := rows.Scan(&format, &gl, &bl, &data); err != nil {
			rows.Close()
			return "", err
		}
		if strings.HasPrefix(string(data), "shardproxy:") {
			pending++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", err
	}
	var n int
	desc := "XA decision log " + txn.DecisionTable
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+txn.DecisionTable).Scan(&n); err != nil {
		desc += fmt.Sprintf(" not readable (%v): serve creates it at startup; the backend user needs CREATE, INSERT, SELECT, DELETE on %s.*", err, txn.DecisionSchema)
	} else {
		desc += fmt.Sprintf(" OK (%d decisions)", n)
	}
	return fmt.Sprintf("%s; %d prepared proxy XA branches awaiting recovery", desc, pending), nil
}

// openBackend opens a database/sql handle as the proxy's account on sh's primary.
func openBackend(sh *rules.Shard) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = sh.Primary.User, sh.Primary.Password, "tcp", sh.Primary.Addr
	cfg.Timeout = 5 * time.Second
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(connector), nil
}

// shardTables lists the tables of a shard's physical database.
func shardTables(ctx context.Context, sh *rules.Shard) (map[string]bool, error) {
	db, err := openBackend(sh)
	if err != nil {
		return nil, err
	}
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
