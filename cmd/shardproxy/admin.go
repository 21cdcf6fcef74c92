package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shardproxy/shardproxy/admin"
	"github.com/shardproxy/shardproxy/coord"
	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/router"
	"github.com/shardproxy/shardproxy/router/txn"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/topo"
)

// adminView satisfies the admin package's interfaces from the running proxy's parts.
type adminView struct {
	store   *rules.Store
	rl      *reloader
	tp      *topo.Topology
	co      *coord.Etcd // nil: no shared topology (the configuration is a file)
	rt      *router.Router
	procs   *processes
	started time.Time
}

var (
	_ admin.Proxy    = (*adminView)(nil)
	_ admin.Access   = (*adminView)(nil)
	_ admin.Backends = (*adminView)(nil)
	_ admin.Sessions = (*adminView)(nil)
	_ admin.Planner  = (*adminView)(nil)
	_ admin.XA       = (*adminView)(nil)
)

// buildVersion is the module version or VCS revision the binary was built from.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	return v
}

func toAdminReload(r reloadResult) admin.Reload {
	return admin.Reload{Time: r.Time, Trigger: r.Trigger, Result: r.Result, Revision: r.Revision, Digest: r.Digest,
		Error: r.Error, RestartRequired: r.RestartRequired}
}

func (a *adminView) Status() admin.Status {
	live := a.rl.Live()
	h := a.rl.History()
	last := live
	if len(h) > 0 {
		last = h[len(h)-1]
	}
	st := admin.Status{Version: buildVersion(), StartedAt: a.started, Config: a.rl.src.Name(),
		Revision: live.Revision, Digest: live.Digest, LastReload: toAdminReload(last)}
	if a.co != nil {
		c := a.co.Status()
		st.Shared = &admin.SharedTopology{ProxyID: c.ID, Leading: c.Leading, Leader: c.Leader, LeaderEpoch: c.LeaderEpoch,
			Version: c.Version, RefusedWrites: c.Refused}
	}
	return st
}

func (a *adminView) Reloads() []admin.Reload {
	var out []admin.Reload
	for _, r := range a.rl.History() {
		out = append(out, toAdminReload(r))
	}
	return out
}

func (a *adminView) Reload(ctx context.Context) admin.Reload {
	return toAdminReload(a.rl.Reload(ctx, "api"))
}

// Ready: a configuration is loaded and every shard has a writable primary: one the
// topology names, not fenced or taken offline, and writable by its last health probe
// (shards in failover mode promote), or answering a ping within a second (shards without
// failover are not probed).
func (a *adminView) Ready(ctx context.Context) (bool, string) {
	snap := a.store.Load()
	if snap == nil {
		return false, "no configuration loaded"
	}
	backends := map[string]topo.BackendInfo{}
	for _, b := range a.tp.Backends() {
		backends[b.Name] = b
	}
	for _, sh := range a.tp.Shards() {
		b, ok := backends[sh.Primary]
		switch {
		case sh.Primary == "" || !ok:
			return false, fmt.Sprintf("shard %s has no writable primary (failover under way?)", sh.Name)
		case b.Fenced != "":
			return false, fmt.Sprintf("shard %s: primary %s is fenced (%s)", sh.Name, b.Name, b.Fenced)
		case b.Health.State == health.Unknown:
			if err := a.ping(ctx, snap, sh.Name); err != nil {
				return false, fmt.Sprintf("shard %s: primary %s: %v", sh.Name, b.Name, err)
			}
		case b.Health.State != health.Up:
			return false, fmt.Sprintf("shard %s: primary %s is %s: %s", sh.Name, b.Name, b.Health.State, b.Health.Reason)
		case b.Health.ReadOnly:
			return false, fmt.Sprintf("shard %s: primary %s is read-only", sh.Name, b.Name)
		}
	}
	return true, ""
}

// ping checks a shard's primary on a pooled connection, within a second.
func (a *adminView) ping(ctx context.Context, snap *rules.Snapshot, shard string) error {
	sh, ok := snap.Shard(shard)
	if !ok {
		return fmt.Errorf("not in the configuration")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c, err := a.tp.Acquire(ctx, sh, rules.RolePrimary)
	if err != nil {
		return err
	}
	err = c.(*topo.Conn).Ping(ctx)
	if err != nil {
		c.State().MarkBroken()
	}
	a.tp.Release(c)
	return err
}

func (a *adminView) Tokens() ([]admin.Token, []string) {
	ac := a.store.Load().Admin()
	out := make([]admin.Token, len(ac.Tokens))
	for i, t := range ac.Tokens {
		out[i] = admin.Token{Name: t.Name, Role: t.Role, SHA256: t.SHA256}
	}
	return out, ac.Open
}

func (a *adminView) Backends() []admin.Backend {
	roles := map[string][]string{}
	for _, sh := range a.tp.Shards() {
		roles[sh.Primary] = append(roles[sh.Primary], "primary of "+sh.Name)
		for _, r := range sh.Replicas {
			roles[r] = append(roles[r], "replica of "+sh.Name)
		}
	}
	var out []admin.Backend
	for _, b := range a.tp.Backends() {
		ab := admin.Backend{Name: b.Name, Addr: b.Addr, Roles: append([]string{}, roles[b.Name]...), State: "online",
			Health: b.Health.State.String(), Reason: b.Health.Reason, Warning: b.Warning}
		switch {
		case topo.IsOffline(b.Fenced):
			ab.State = "offline"
		case b.Fenced != "":
			ab.State = "fenced: " + b.Fenced
		}
		if r := b.Health.Replica; r != nil && r.LagKnown {
			lag := r.Lag.Seconds()
			ab.LagSeconds = &lag
		}
		ab.Pool = &admin.Pool{MaxOpen: b.Pool.MaxOpen, Open: b.Pool.Open, Idle: b.Pool.Idle, InUse: b.Pool.InUse,
			Waiting: b.Pool.Waiting, WaitCount: b.Pool.WaitCount, WaitSeconds: b.Pool.WaitDuration.Seconds(),
			AcquireTimeouts: b.Pool.AcquireTimeouts, DialErrors: b.Pool.DialErrors}
		out = append(out, ab)
	}
	return out
}

func (a *adminView) SetOffline(ctx context.Context, name string) (int, error) {
	return a.tp.SetOffline(ctx, name)
}

func (a *adminView) SetOnline(name string) error { return a.tp.SetOnline(name) }

// Switchover runs a planned switchover on the topology and maps its refusals.
func (a *adminView) Switchover(ctx context.Context, shard, to string) (admin.SwitchoverResult, error) {
	r, err := a.tp.Switchover(ctx, shard, to)
	out := admin.SwitchoverResult{Shard: r.Shard, Old: r.Old, New: r.New, PausedMS: float64(r.Paused.Microseconds()) / 1000, Position: r.Position}
	switch {
	case errors.Is(err, topo.ErrUnknownShard):
		err = fmt.Errorf("%w: %w", admin.ErrNotFound, err)
	case errors.Is(err, topo.ErrSwitchover):
		err = fmt.Errorf("%w: %s", admin.ErrSwitchoverRefused, strings.TrimPrefix(err.Error(), topo.ErrSwitchover.Error()+": "))
	}
	return out, err
}

// shards is the topology's view of every shard (its current primary, after failovers)
// with the logical databases the configuration puts on it.
func (a *adminView) shards() []admin.Shard {
	snap := a.store.Load()
	dbs := map[string][]string{}
	for _, n := range snap.DatabaseNames() {
		db, _ := snap.Database(n)
		for _, sh := range db.Shards() {
			dbs[sh.Name] = append(dbs[sh.Name], n)
		}
	}
	var out []admin.Shard
	for _, sh := range a.tp.Shards() {
		out = append(out, admin.Shard{Name: sh.Name, Database: sh.Database, Primary: sh.Primary,
			Replicas: append([]string{}, sh.Replicas...), Databases: dbs[sh.Name], Failover: sh.Failover, Waiting: sh.Waiting})
	}
	return out
}

// failovers is the topology's recent failover events.
func (a *adminView) failovers() []admin.Failover {
	out := []admin.Failover{}
	for _, e := range a.tp.History() {
		out = append(out, admin.Failover{Time: e.At, Kind: string(e.Kind), Mode: e.Mode, Backend: e.Backend, NewPrimary: e.NewPrimary,
			Shards: e.Shards, Reason: e.Reason, Seconds: e.Took.Seconds()})
	}
	return out
}

func (a *adminView) Sessions() []admin.Session {
	var out []admin.Session
	for _, p := range a.procs.srv.Processes() {
		s := admin.Session{ID: p.ID, User: p.User, Host: p.Host, DB: p.DB, Command: p.Command, Seconds: int64(p.Time / time.Second), State: p.State}
		if p.Info != "" {
			s.Digest = parser.Normalize(p.Info, "ON") // literals become "?": no values leave the proxy
		}
		out = append(out, s)
	}
	return out
}

func (a *adminView) Kill(id uint32, query bool) bool {
	if query {
		return a.procs.srv.KillQuery(id)
	}
	return a.procs.srv.KillConnection(id)
}

// Explain plans sql as user (default: the first admin user, else the first user) in db.
func (a *adminView) Explain(ctx context.Context, user, db, sql string) ([]admin.PlanStep, error) {
	snap := a.store.Load()
	if user == "" {
		for _, u := range snap.Users() { // sorted by name
			if u.Admin {
				user = u.Name
				break
			}
		}
	}
	if user == "" && len(snap.Users()) > 0 {
		user = snap.Users()[0].Name
	}
	s, err := a.rt.NewSession(ctx, router.SessionInfo{User: user, Collation: 45})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if db != "" {
		if err := s.UseDB(ctx, db); err != nil {
			return nil, err
		}
	}
	steps, err := s.Explain(sql)
	if err != nil {
		return nil, err
	}
	out := make([]admin.PlanStep, len(steps))
	for i, st := range steps {
		out[i] = admin.PlanStep{Step: st.Step, Shard: st.Shard, Detail: st.Detail}
	}
	return out, nil
}

// Pending lists the proxy's prepared XA branches on every server of a multi-shard database.
func (a *adminView) Pending(ctx context.Context) ([]admin.XABranch, error) {
	var out []admin.XABranch
	var errs []error
	for _, sh := range txn.XAServers(a.store.Load()) {
		xids, err := pendingXids(ctx, sh)
		if err != nil {
			errs = append(errs, fmt.Errorf("backend %s: %w", sh.Primary.Name, err))
			continue
		}
		for _, x := range xids {
			out = append(out, admin.XABranch{Backend: sh.Primary.Name, Xid: x})
		}
	}
	return out, errors.Join(errs...)
}

// pendingXids runs XA RECOVER on sh's server and returns the proxy's branches.
func pendingXids(ctx context.Context, sh *rules.Shard) ([]string, error) {
	db, err := openBackend(sh)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, "XA RECOVER")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var format, gl, bl int
		var data []byte
		if err := rows.Scan(&format, &gl, &bl, &data); err != nil {
			return nil, err
		}
		if strings.HasPrefix(string(data), "shardproxy:") {
			out = append(out, string(data))
		}
	}
	return out, rows.Err()
}

// rulesView is the configuration without secrets: no password, hash or token appears.
func rulesView(snap *rules.Snapshot) any {
	type table struct {
		Name, Kind, Key, Scheme string `json:",omitempty"`
	}
	type database struct {
		Name, DefaultShard string
		MaxExecutionTime   string `json:",omitempty"`
		Tables             []table
	}
	type user struct {
		Name             string
		Admin            bool
		MaxExecutionTime string `json:",omitempty"`
	}
	type backend struct {
		Name, Addr, User string
		Pool             rules.PoolConfig
	}
	v := struct {
		Listen    string
		Users     []user
		Backends  []backend
		Databases []database
		Admin     struct {
			Listen string
			Tokens []string // names only
			Open   []string
		}
	}{Listen: snap.Listen()}
	for _, u := range snap.Users() {
		v.Users = append(v.Users, user{Name: u.Name, Admin: u.Admin, MaxExecutionTime: durString(u.MaxExecTime)})
	}
	for _, b := range snap.Backends() {
		v.Backends = append(v.Backends, backend{Name: b.Name, Addr: b.Addr, User: b.User, Pool: b.Pool})
	}
	for _, n := range snap.DatabaseNames() {
		db, _ := snap.Database(n)
		d := database{Name: n, DefaultShard: db.DefaultShard.Name, MaxExecutionTime: durString(db.MaxExecTime), Tables: []table{}}
		for _, tn := range db.TableNames() {
			t := db.Table(tn)
			tv := table{Name: t.Name, Kind: t.Kind}
			if t.Kind == rules.KindSharded {
				tv.Key, tv.Scheme = t.Key, t.Scheme.Name
			}
			d.Tables = append(d.Tables, tv)
		}
		v.Databases = append(v.Databases, d)
	}
	ac := snap.Admin()
	v.Admin.Listen, v.Admin.Open = ac.Listen, ac.Open
	for _, t := range ac.Tokens {
		v.Admin.Tokens = append(v.Admin.Tokens, t.Name+" ("+t.Role+")")
	}
	return v
}

func durString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// serveAdmin starts the admin server on the configured address (TLS when configured); the
// returned func stops it and waits.
func serveAdmin(view *adminView, reg *prometheus.Registry, log *slog.Logger) (func(), error) {
	ac := view.store.Load().Admin()
	if ac.Listen == "" {
		return func() {}, nil
	}
	srv, err := admin.New(admin.Options{Proxy: view, Access: view, Backends: view, Sessions: view, Planner: view, XA: view, Switcher: view,
		Shards: view.shards, Failovers: view.failovers, Rules: func() any { return rulesView(view.store.Load()) },
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), Logger: log})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", ac.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin.listen: %w", err)
	}
	if ac.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(ac.TLSCert, ac.TLSKey)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("admin TLS: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("admin server stopped", "err", err)
		}
	}()
	log.Info("admin API listening", "addr", ln.Addr().String(), "tls", ac.TLSCert != "")
	return func() {
		_ = hs.Close()
		<-done
	}, nil
}
