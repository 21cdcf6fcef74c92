package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// heartbeatDB and heartbeatTable hold the heartbeat the checker writes on each primary.
const (
	heartbeatDB    = "shardproxy"
	heartbeatTable = "shardproxy.heartbeat"
)

// conn is one probe (or heartbeat) connection with a deadline per exchange.
type conn struct {
	cc *client.Conn
	nc net.Conn
}

// dial connects to t, bounded by ctx (its deadline also bounds the handshake).
func dial(ctx context.Context, t Target) (_ *conn, err error) {
	var nc net.Conn
	defer func() {
		if r := recover(); r != nil { // go-mysql decoding a malformed greeting or login answer
			if nc != nil {
				_ = nc.Close()
			}
			err = fmt.Errorf("connect: malformed handshake from the backend (%v)", r)
		}
	}()
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetDeadline(dl)
		}
		nc = c
		return c, nil
	}
	cc, err := client.ConnectWithDialer(ctx, "tcp", t.Addr, t.User, t.Password, "", dialer,
		func(c *client.Conn) error {
			c.SetAttributes(map[string]string{"program_name": "shardproxy-health"})
			return nil
		})
	if err != nil {
		if nc != nil {
			_ = nc.Close()
		}
		return nil, fmt.Errorf("connect: %w", err)
	}
	return &conn{cc: cc, nc: cc.Conn.Conn}, nil
}

func (c *conn) close() { _ = c.nc.Close() }

// query runs q with the socket's deadline set from ctx.
func (c *conn) query(ctx context.Context, q string) (_ *mysql.Result, err error) {
	defer func() {
		if r := recover(); r != nil { // go-mysql decoding a malformed result: the probe fails
			err = fmt.Errorf("%.40s: malformed answer from the backend (%v)", q, r)
		}
	}()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	r, err := c.cc.Execute(q)
	if err != nil {
		return nil, fmt.Errorf("%.40s: %w", q, err)
	}
	return r, nil
}

// isServerError reports whether err is an ERR packet of the server (the connection is fine).
func isServerError(err error) bool {
	var me *mysql.MyError
	return errors.As(err, &me)
}

const varsQuery = "SELECT @@server_id, @@read_only, @@gtid_binlog_pos, @@gtid_slave_pos, @@log_bin, " +
	"@@log_slave_updates, @@gtid_strict_mode, @@rpl_semi_sync_master_enabled, @@rpl_semi_sync_slave_enabled, " +
	"@@rpl_semi_sync_master_wait_point, @@rpl_semi_sync_master_timeout, @@rpl_semi_sync_master_wait_no_slave"

const statusQuery = "SHOW GLOBAL STATUS WHERE Variable_name IN ('Rpl_semi_sync_master_status', 'Rpl_semi_sync_master_clients')"

const lagQuery = "SELECT TIMESTAMPDIFF(MICROSECOND, MAX(ts), NOW(6)) FROM " + heartbeatTable

// probe reads a server's state into st (the fields of a successful probe).
func (c *conn) probe(ctx context.Context, st *Status) error {
	r, err := c.query(ctx, varsQuery)
	if err != nil {
		return err
	}
	if r.Resultset == nil || r.RowNumber() != 1 {
		return errors.New("variables: no row")
	}
	v := func(i int) string { s, _ := r.GetString(0, i); return s }
	id, _ := strconv.ParseUint(v(0), 10, 32)
	st.ServerID = uint32(id)
	st.ReadOnly = v(1) == "1"
	st.BinlogPos = v(2)
	slavePos := v(3)
	st.Settings = Settings{LogBin: v(4) == "1", LogSlaveUpdates: v(5) == "1", GTIDStrictMode: v(6) == "1",
		SemiSyncMaster: v(7) == "1", SemiSyncSlave: v(8) == "1", SemiSyncWaitPoint: v(9),
		SemiSyncWaitNoSlave: v(11) == "1"}
	if ms, err := strconv.ParseInt(v(10), 10, 64); err == nil {
		st.Settings.SemiSyncTimeout = time.Duration(ms) * time.Millisecond
	}
	if r, err = c.query(ctx, statusQuery); err != nil {
		return err
	}
	for i := range r.RowNumber() {
		name, _ := r.GetString(i, 0)
		val, _ := r.GetString(i, 1)
		switch strings.ToLower(name) {
		case "rpl_semi_sync_master_status":
			st.Settings.SemiSyncActive = strings.EqualFold(val, "ON")
		case "rpl_semi_sync_master_clients":
			st.Settings.SemiSyncClients, _ = strconv.Atoi(val)
		}
	}
	return c.probeReplica(ctx, st, slavePos)
}

// probeReplica reads SHOW SLAVE STATUS and the heartbeat lag; st.Replica stays nil on a
// server that replicates from nobody.
func (c *conn) probeReplica(ctx context.Context, st *Status, slavePos string) error {
	r, err := c.query(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return err
	}
	if r.Resultset == nil || r.RowNumber() == 0 {
		return nil
	}
	get := func(name string) string { s, _ := r.GetStringByName(0, name); return s }
	port, _ := strconv.Atoi(get("Master_Port"))
	rep := &Replication{MasterHost: get("Master_Host"), MasterPort: port, IORunning: get("Slave_IO_Running"),
		SQLRunning: get("Slave_SQL_Running") == "Yes", IOPos: get("Gtid_IO_Pos"), SlavePos: slavePos,
		LastIOError: get("Last_IO_Error"), LastSQLError: get("Last_SQL_Error")}
	st.Replica = rep
	lr, err := c.query(ctx, lagQuery)
	switch {
	case err == nil && lr.RowNumber() == 1:
		if us, perr := lr.GetInt(0, 0); perr == nil {
			if s, _ := lr.GetString(0, 0); s != "" {
				rep.Lag, rep.LagKnown = max(time.Duration(us)*time.Microsecond, 0), true
			}
		}
	case err != nil && !isServerError(err):
		return err // the connection failed; a missing table is not a failure
	}
	return nil
}

// heartbeat writes the current time on a primary that is writable (creating the table the
// first time).
func (c *conn) heartbeat(ctx context.Context, created *bool) error {
	if !*created {
		for _, q := range []string{
			"CREATE DATABASE IF NOT EXISTS " + heartbeatDB,
			"CREATE TABLE IF NOT EXISTS " + heartbeatTable + " (server_id INT UNSIGNED PRIMARY KEY, ts DATETIME(6) NOT NULL)",
		} {
			if _, err := c.query(ctx, q); err != nil {
				return err
			}
		}
		*created = true
	}
	// Only while the server is writable: the proxy's account bypasses read_only, and a
	// heartbeat that reached a primary a switchover has just made read-only would be a
	// transaction after the position the new primary waits for (its other replicas then
	// diverge). SET GLOBAL read_only = 1 waits for a statement under way, so a heartbeat is
	// either in that position or writes nothing.
	_, err := c.query(ctx, "INSERT INTO "+heartbeatTable+" (server_id, ts) SELECT @@server_id, NOW(6) FROM DUAL WHERE @@read_only = 0 "+
		"ON DUPLICATE KEY UPDATE ts = VALUES(ts)")
	return err
}
