package txn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// Recovery of multi-shard writes a proxy left unfinished (it crashed, or lost a connection
// between the decision and XA COMMIT): every shard's *current* primary (Backend.Acquire with
// RolePrimary: after a failover, the promoted replica, which holds the branches MariaDB
// replicated with XA PREPARE and the decision rows semi-sync made durable) is asked for its prepared XA
// branches (XA RECOVER); each branch whose gtrid carries the proxy's prefix is committed
// when the coordinator's server holds a 'commit' decision for it, and rolled back otherwise
// (presumed abort). Before rolling back, recovery writes an 'abort' decision under the same
// key: should the coordinator still be running (another proxy, or a stalled one), its own
// decision insert now collides or waits, so it can never commit after recovery aborted.
// Branches younger than MinAge are left alone: they are most likely in flight.

// RecoverOptions configures a Recoverer.
type RecoverOptions struct {
	Rules   *rules.Store
	Backend engine.Backend
	// MinAge is how old (by the time in its gtrid) an undecided branch must be before it is
	// rolled back. Default 10s.
	MinAge time.Duration
	// Interval between passes of Run. Default 10s.
	Interval time.Duration
	// Metrics counts resolved branches; nil counts nothing.
	Metrics XAMetrics
	// Logger; nil discards.
	Logger *slog.Logger
}

// Recoverer resolves prepared XA branches left by proxies. Safe for concurrent use; several
// proxies may recover the same servers at once.
type Recoverer struct {
	o     RecoverOptions
	mu    sync.Mutex
	ready map[string]bool // servers (addresses) whose decision log exists
}

// NewRecoverer returns a Recoverer; zero options get their defaults.
func NewRecoverer(o RecoverOptions) *Recoverer {
	if o.MinAge <= 0 {
		o.MinAge = 10 * time.Second
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Metrics == nil {
		o.Metrics = noXAMetrics{}
	}
	return &Recoverer{o: o, ready: map[string]bool{}}
}

// RecoverStats counts what a pass did.
type RecoverStats struct {
	Committed, RolledBack, Pending int
}

// XAServers returns one shard per distinct primary server holding a shard of a logical
// database of several shards (only those see multi-shard writes): XA RECOVER and the
// decision log are per server.
func XAServers(snap *rules.Snapshot) []*rules.Shard {
	var out []*rules.Shard
	seen := map[string]bool{}
	for _, name := range snap.DatabaseNames() {
		db, _ := snap.Database(name)
		if len(db.Shards()) < 2 {
			continue
		}
		for _, sh := range db.Shards() {
			if !seen[sh.Primary.Addr] {
				seen[sh.Primary.Addr] = true
				out = append(out, sh)
			}
		}
	}
	return out
}

// Setup creates the decision log on every server servers names (each pass of Run does it
// for servers a configuration reload added). Errors name the servers where it failed; the
// others are set up anyway.
func (rc *Recoverer) Setup(ctx context.Context) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var errs []error
	for _, sh := range XAServers(rc.o.Rules.Load()) {
		if rc.ready[sh.Primary.Addr] {
			continue
		}
		err := rc.withConn(ctx, sh, func(c engine.Conn) error {
			for _, q := range DecisionDDL() {
				if _, err := c.Exec(ctx, q); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("backend %s: %w", sh.Primary.Name, err))
			continue
		}
		rc.ready[sh.Primary.Addr] = true
	}
	return errors.Join(errs...)
}

// Run runs a pass at once and then every Interval until ctx is done.
func (rc *Recoverer) Run(ctx context.Context) {
	t := time.NewTicker(rc.o.Interval)
	defer t.Stop()
	for {
		if err := rc.Setup(ctx); err != nil && ctx.Err() == nil {
			rc.o.Logger.Warn("XA decision log not ready on every backend: writes spanning shards fail there until it is", "err", err)
		}
		st, err := rc.Pass(ctx)
		if err != nil && ctx.Err() == nil {
			rc.o.Logger.Warn("XA recovery pass incomplete", "err", err)
		}
		if st.Committed+st.RolledBack > 0 {
			rc.o.Logger.Info("XA recovery finished branches left by a proxy", "committed", st.Committed, "rolled_back", st.RolledBack, "pending", st.Pending)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pass resolves the proxy's prepared branches on every shard's primary server once.
func (rc *Recoverer) Pass(ctx context.Context) (RecoverStats, error) {
	snap := rc.o.Rules.Load()
	coords := map[string]*rules.Shard{} // shard tag → shard
	for _, sh := range snap.Shards() {
		coords[shardTag(sh.Name)] = sh
	}
	var st RecoverStats
	var errs []error
	decisions := map[string]string{} // gtrid → "commit", "abort" or "" (undecided), this pass
	for _, sh := range XAServers(snap) {
		err := rc.withConn(ctx, sh, func(c engine.Conn) error {
			rows, err := engine.QueryRows(ctx, c, "XA RECOVER")
			if err != nil {
				return err
			}
			for _, row := range rows {
				x, format, ok := parseRecoverRow(row)
				if !ok {
					continue
				}
				created, tag, ok := parseGtrid(x.gtrid)
				if !ok {
					continue // not the proxy's
				}
				d, seen := decisions[x.gtrid]
				if !seen {
					d, err = rc.decide(ctx, coords[tag], x.gtrid, created)
					if err != nil {
						errs = append(errs, fmt.Errorf("gtrid %q: %w", x.gtrid, err))
						d = ""
					}
					decisions[x.gtrid] = d
				}
				verb := map[string]string{"commit": "XA COMMIT ", "abort": "XA ROLLBACK "}[d]
				if verb == "" {
					st.Pending++
					continue
				}
				if _, err := c.Exec(ctx, verb+x.String()+","+strconv.Itoa(format)); err != nil && !xaGone(err) {
					errs = append(errs, fmt.Errorf("%s%q on backend %s: %w", verb, x.gtrid, c.Server(), err))
					st.Pending++
					continue
				}
				rc.o.Logger.Info("XA recovery", "decision", d, "gtrid", x.gtrid, "branch", x.bqual, "shard", sh.Name, "backend", c.Server())
				rc.o.Metrics.XARecovered(d)
				if d == "commit" {
					st.Committed++
				} else {
					st.RolledBack++
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("backend %s: %w", sh.Primary.Name, err))
		}
	}
	if len(errs) == 0 && st.Pending == 0 {
		errs = append(errs, rc.forget(ctx, snap))
	}
	return st, errors.Join(errs...)
}

// decisionRetention is how long decision rows are kept. A pass that saw every server and no
// unresolved proxy branch deletes older ones: any branch that old would have been listed.
const decisionRetention = "1 DAY"

// forget deletes decisions older than decisionRetention on every server.
func (rc *Recoverer) forget(ctx context.Context, snap *rules.Snapshot) error {
	var errs []error
	for _, sh := range XAServers(snap) {
		err := rc.withConn(ctx, sh, func(c engine.Conn) error {
			_, err := c.Exec(ctx, "DELETE FROM "+DecisionTable+" WHERE created < NOW(6) - INTERVAL "+decisionRetention+" LIMIT 10000")
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("backend %s: deleting old decisions: %w", sh.Primary.Name, err))
		}
	}
	return errors.Join(errs...)
}

// decide returns the decision for gtrid from the coordinator's server: "commit", "abort",
// or "" when there is none yet and the branch is too young to presume an abort (or the
// coordinator is still deciding).
func (rc *Recoverer) decide(ctx context.Context, coord *rules.Shard, gtrid string, created time.Time) (string, error) {
	if coord == nil {
		return "", errors.New("its coordinator shard is not in the configuration: resolve it by hand (XA COMMIT or XA ROLLBACK)")
	}
	var d string
	err := rc.withConn(ctx, coord, func(c engine.Conn) error {
		sel := fmt.Sprintf("SELECT decision FROM %s WHERE gtrid = X'%x'", DecisionTable, gtrid)
		row, err := engine.QueryRow(ctx, c, sel)
		if err != nil || row != nil {
			if row != nil && row[0] != nil {
				d = *row[0]
			}
			return err
		}
		if time.Since(created) < rc.o.MinAge {
			return nil
		}
		// Presume abort, durably: a coordinator still holding its uncommitted decision row
		// makes this wait (briefly), one that committed it makes it collide.
		_, err = c.Exec(ctx, fmt.Sprintf("SET STATEMENT innodb_lock_wait_timeout = 2 FOR INSERT INTO %s (gtrid, decision) VALUES (X'%x', 'abort')", DecisionTable, gtrid))
		if e, ok := sqlerr.As(err); ok && (e.Code == 1062 || e.Code == sqlerr.ErLockWaitTimeout) {
			row, err = engine.QueryRow(ctx, c, sel)
			if row != nil && row[0] != nil && e.Code == 1062 {
				d = *row[0]
			}
			return err
		}
		if err == nil {
			d = "abort"
		}
		return err
	})
	return d, err
}

// withConn runs f on a pooled connection to shard's primary.
// A panic in f (backend bytes no check caught) fails this server's part of the pass, not the
// process: the connection is closed and the next pass tries again.
func (rc *Recoverer) withConn(ctx context.Context, shard *rules.Shard, f func(engine.Conn) error) (err error) {
	c, err := rc.o.Backend.Acquire(ctx, shard, rules.RolePrimary)
	if err != nil {
		return err
	}
	defer rc.o.Backend.Release(c)
	defer func() {
		if r := recover(); r != nil {
			c.State().MarkBroken()
			rc.o.Logger.Error("panic during XA recovery; its backend connection is closed", "shard", shard.Name, "panic", r, "stack", string(debug.Stack()))
			err = engine.Panicked(r)
		}
	}()
	return f(c)
}

// parseRecoverRow reads one row of XA RECOVER: formatID, gtrid_length, bqual_length, data.
func parseRecoverRow(row []*string) (xid, int, bool) {
	if len(row) < 4 || row[0] == nil || row[1] == nil || row[2] == nil || row[3] == nil {
		return xid{}, 0, false
	}
	format, err1 := strconv.Atoi(*row[0])
	gl, err2 := strconv.Atoi(*row[1])
	bl, err3 := strconv.Atoi(*row[2])
	data := *row[3]
	if err1 != nil || err2 != nil || err3 != nil || gl < 0 || bl < 0 || gl+bl > len(data) {
		return xid{}, 0, false
	}
	return xid{gtrid: data[:gl], bqual: data[gl : gl+bl]}, format, true
}
