package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

func parseOneForTest(t *testing.T, sql string) ast.StmtNode {
	t.Helper()
	st, err := parser.New().ParseOneStmt(sql, "", "")
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return st
}

func TestStatementHint(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want hintDeadline
	}{
		{"SELECT /*+ MAX_EXECUTION_TIME(200) */ SLEEP(10)", hintDeadline{200 * time.Millisecond, true}},
		{"SELECT /*+ max_execution_time(1500) */ 1", hintDeadline{1500 * time.Millisecond, true}},
		{"SELECT /*+ MAX_EXECUTION_TIME(0) */ 1", hintDeadline{0, true}}, // 0: no limit, as in MySQL
		{"UPDATE /*+ MAX_EXECUTION_TIME(300) */ t SET a = 1", hintDeadline{300 * time.Millisecond, true}},
		{"DELETE /*+ MAX_EXECUTION_TIME(300) */ FROM t", hintDeadline{300 * time.Millisecond, true}},
		{"SELECT /* MAX_EXECUTION_TIME(200) */ 1", hintDeadline{}}, // a plain comment is no hint
		{"SELECT 1", hintDeadline{}},
		{"SET max_execution_time = 5", hintDeadline{}},
	} {
		if got := statementHint(parseOneForTest(t, tc.sql)); got != tc.want {
			t.Errorf("%s: hint %+v, want %+v", tc.sql, got, tc.want)
		}
	}
}

func TestDeadlineValue(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want time.Duration
		code uint16 // error expected
	}{
		{"SET max_execution_time = 200", 200 * time.Millisecond, 0},
		{"SET SESSION max_execution_time = 0", 0, 0},
		{"SET max_statement_time = 0.2", 200 * time.Millisecond, 0},
		{"SET max_statement_time = 2", 2 * time.Second, 0},
		{"SET max_statement_time = 1.5e0", 1500 * time.Millisecond, 0},
		{"SET max_execution_time = DEFAULT", -1, 0},
		{"SET max_execution_time = -5", 0, sqlerr.ErWrongValueForVar},
		{"SET max_execution_time = 'soon'", 0, sqlerr.ErWrongValueForVar},
		{"SET max_execution_time = @x", 0, sqlerr.ErWrongValueForVar},
		{"SET max_statement_time = 1e30", 0, sqlerr.ErWrongValueForVar},
	} {
		v := parseOneForTest(t, tc.sql).(*ast.SetStmt).Variables[0]
		got, err := deadlineValue(strings.ToLower(v.Name), v.Value)
		switch {
		case tc.code != 0 && sqlCode(err) != tc.code:
			t.Errorf("%s: %v, %v; want error %d", tc.sql, got, err, tc.code)
		case tc.code == 0 && (err != nil || got != tc.want):
			t.Errorf("%s: %v, %v; want %v", tc.sql, got, err, tc.want)
		}
	}
}

// deadlineConfig has defaults at every level: user fast 100ms, database slowdb 300ms, server
// 1s; user plain has none of its own.
func deadlineConfig() *rules.Config {
	c := plantest.PassthroughConfig()
	c.Server.MaxExecutionTime = rules.Duration(time.Second)
	c.Users = append(c.Users,
		rules.UserConfig{Name: "fast", PasswordHash: c.Users[0].PasswordHash, MaxExecutionTime: rules.Duration(100 * time.Millisecond)},
		rules.UserConfig{Name: "plain", PasswordHash: c.Users[0].PasswordHash})
	c.Databases[1].MaxExecutionTime = rules.Duration(300 * time.Millisecond) // blog
	return c
}

func TestDeadlineFor(t *testing.T) {
	hint := hintDeadline{50 * time.Millisecond, true}
	for _, tc := range []struct {
		name, user, db string
		hint           hintDeadline
		session        *time.Duration
		want           time.Duration
		source         string
	}{
		{"HintFirst", "fast", "blog", hint, new(2 * time.Second), 50 * time.Millisecond, SourceHint},
		{"HintZeroIsNoLimit", "fast", "blog", hintDeadline{0, true}, nil, 0, SourceHint},
		{"SessionOverDefaults", "fast", "blog", hintDeadline{}, new(2 * time.Second), 2 * time.Second, SourceSession},
		{"SessionZeroIsNoLimit", "fast", "blog", hintDeadline{}, new(time.Duration(0)), 0, SourceSession},
		{"User", "fast", "blog", hintDeadline{}, nil, 100 * time.Millisecond, SourceUser},
		{"Database", "plain", "blog", hintDeadline{}, nil, 300 * time.Millisecond, SourceDatabase},
		{"Server", "plain", "shop", hintDeadline{}, nil, time.Second, SourceServer},
		{"ServerWithoutDatabase", "plain", "", hintDeadline{}, nil, time.Second, SourceServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, snap := newTestSession(t, deadlineConfig(), tc.user, tc.db)
			if tc.session != nil {
				s.vars.execTime, s.vars.execTimeSet = *tc.session, true
			}
			d, source := s.vars.deadline(snap, s.user, s.db, tc.hint)
			if d != tc.want || source != tc.source {
				t.Errorf("deadline %v from %q, want %v from %q", d, source, tc.want, tc.source)
			}
		})
	}
	t.Run("None", func(t *testing.T) {
		s, snap := newTestSession(t, plantest.PassthroughConfig(), "app", "shop")
		if d, source := s.vars.deadline(snap, s.user, s.db, hintDeadline{}); d != 0 || source != "" {
			t.Errorf("without any setting: %v from %q", d, source)
		}
	})
}

func TestInterruptedOutcome(t *testing.T) {
	deadline, cancelD := context.WithTimeout(context.Background(), 0)
	defer cancelD()
	<-deadline.Done()
	killed, cancelK := context.WithCancelCause(context.Background())
	cancelK(sqlerr.ErrKilledQuery)
	backendErr := sqlerr.New(sqlerr.ErQueryInterrupted, "Query execution was interrupted")
	drainTimedOut := fmt.Errorf("%w: read: i/o timeout", engine.ErrBackendIO)
	cutByDeadline := fmt.Errorf("%w (backend connection 1)", context.DeadlineExceeded)
	const lost = 1 // the client connection is closed: outcome unknown
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		write   bool
		dropped bool
		err     error
		code    uint16 // 0: success; lost: sqlerr.ErrLost
		reason  string
	}{
		{"CompletedBeforeDeadline", deadline, false, false, nil, 0, ReasonTimeout},
		{"ResultCutAtDeadline", deadline, false, true, nil, sqlerr.ErQueryTimeout, ReasonTimeout},
		{"BackendInterruptedAtDeadline", deadline, false, false, backendErr, sqlerr.ErQueryTimeout, ReasonTimeout},
		{"DrainTimedOut", deadline, false, false, drainTimedOut, sqlerr.ErQueryTimeout, ReasonTimeout},
		{"KillQuery", killed, false, false, backendErr, sqlerr.ErQueryInterrupted, ReasonKillQuery},
		// A write's late OK is its outcome; its kill's ERR says it did not run; no answer
		// at all leaves it unknown.
		{"WriteLateOK", deadline, true, false, nil, 0, ReasonTimeout},
		{"WriteKilledAtDeadline", deadline, true, false, backendErr, sqlerr.ErQueryTimeout, ReasonTimeout},
		{"WriteKilledByKillQuery", killed, true, false, backendErr, sqlerr.ErQueryInterrupted, ReasonKillQuery},
		{"WriteDrainTimedOut", deadline, true, false, drainTimedOut, lost, ReasonTimeout},
		{"WriteCutByDeadline", deadline, true, false, cutByDeadline, lost, ReasonTimeout},
		{"WriteConnectionLostAfterKillQuery", killed, true, false, drainTimedOut, lost, ReasonKillQuery},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := interrupted(tc.ctx, &cutoff{ctx: tc.ctx, keep: tc.write, dropped: tc.dropped}, tc.err, tc.write)
			got := sqlCode(err)
			if errors.Is(err, sqlerr.ErrLost) {
				got = lost
			}
			if got != tc.code {
				t.Errorf("client error %v (code %d), want code %d", err, got, tc.code)
			}
			if got := killReason(tc.ctx); got != tc.reason {
				t.Errorf("kill reason %q, want %q", got, tc.reason)
			}
		})
	}
	for cause, want := range map[error]string{
		sqlerr.ErrClientGone: ReasonClientGone, sqlerr.ErrKilledConnection: ReasonKillConnection,
		context.Canceled: ReasonOther, fmt.Errorf("x: %w", context.DeadlineExceeded): ReasonTimeout,
	} {
		if got := killReasonOf(cause); got != want {
			t.Errorf("killReasonOf(%v) = %q, want %q", cause, got, want)
		}
	}
}

func TestSessionDeadlineVariablesStayInProxy(t *testing.T) {
	be := newFakeBackend()
	s := fakeSession(t, fakeRouter(t, be), "app", 1)
	var w clientRecorder
	exec(t, s, "SET SESSION max_execution_time = 250", &w)
	wantLog(t, be) // answered by the proxy: MariaDB does not know it
	if len(w.oks()) != 1 || !s.vars.execTimeSet || s.vars.execTime != 250*time.Millisecond {
		t.Errorf("after SET max_execution_time = 250: %d OKs, session %v (set %v)", len(w.oks()), s.vars.execTime, s.vars.execTimeSet)
	}
	be.values["time_zone"] = "+01:00"
	exec(t, s, "SET max_statement_time = 0.5, time_zone = '+01:00'", &w)
	wantLog(t, be,
		"s_shop#1: SET @@SESSION.`time_zone`='+01:00'",
		"s_shop#1: SELECT @@session.time_zone")
	if s.vars.execTime != 500*time.Millisecond {
		t.Errorf("after SET max_statement_time = 0.5: %v", s.vars.execTime)
	}
	exec(t, s, "SELECT @@max_execution_time, @@session.max_statement_time", &w)
	wantLog(t, be, "s_shop#1: SELECT 500 AS `@@max_execution_time`,0.500000 AS `@@session.max_statement_time`")
	exec(t, s, "SET max_execution_time = DEFAULT", &w)
	if s.vars.execTimeSet {
		t.Error("SET max_execution_time = DEFAULT left a session value")
	}
	if err := s.Query(context.Background(), "SET max_execution_time = 'x'", false, &w); sqlCode(err) != sqlerr.ErWrongValueForVar {
		t.Errorf("SET max_execution_time = 'x': %v, want 1231", err)
	}
}

// fakeProcesses records kills and lists fixed connections.
type fakeProcesses struct {
	mu    sync.Mutex
	procs []Process
	kills []string
}

func (f *fakeProcesses) List() []Process { return f.procs }

func (f *fakeProcesses) KillQuery(id uint32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kills = append(f.kills, fmt.Sprintf("query %d", id))
	return true
}

func (f *fakeProcesses) KillConnection(id uint32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kills = append(f.kills, fmt.Sprintf("connection %d", id))
	return true
}

func TestSessionKill(t *testing.T) {
	cfg := plantest.PassthroughConfig()
	cfg.Users = append(cfg.Users, rules.UserConfig{Name: "root", PasswordHash: cfg.Users[0].PasswordHash, Admin: true})
	snap, err := rules.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	procs := &fakeProcesses{procs: []Process{
		{ID: 1, User: "app"}, {ID: 2, User: "app"}, {ID: 3, User: "blogger"}, {ID: 4, User: "root"},
	}}
	r := New(Options{Rules: rules.NewStore(snap), Backend: newFakeBackend(), Processes: procs})
	app, root := fakeSession(t, r, "app", 1), fakeSession(t, r, "root", 4)
	for _, tc := range []struct {
		s    *Session
		sql  string
		code uint16
		kill string
	}{
		{app, "KILL QUERY 2", 0, "query 2"},
		{app, "KILL 2", 0, "connection 2"},
		{app, "KILL CONNECTION 2", 0, "connection 2"},
		{app, "KILL QUERY 3", sqlerr.ErKillDenied, ""},
		{app, "KILL 4", sqlerr.ErKillDenied, ""},
		{app, "KILL 99", sqlerr.ErNoSuchThread, ""},
		{app, "KILL QUERY 1", 0, ""}, // its own statement is this KILL
		{root, "KILL QUERY 3", 0, "query 3"},
		{root, "KILL 1", 0, "connection 1"},
		{app, "KILL 1", sqlerr.ErConnectionKilled, ""},
	} {
		procs.kills = nil
		var w clientRecorder
		err := tc.s.Query(context.Background(), tc.sql, false, &w)
		if got := sqlCode(err); got != tc.code {
			t.Errorf("%s by %s: %v, want code %d", tc.sql, tc.s.user, err, tc.code)
		}
		if tc.code == 0 && len(w.oks()) != 1 {
			t.Errorf("%s by %s: no OK", tc.sql, tc.s.user)
		}
		if got := strings.Join(procs.kills, ","); got != tc.kill {
			t.Errorf("%s by %s: killed %q, want %q", tc.sql, tc.s.user, got, tc.kill)
		}
	}
	var w clientRecorder
	if err := app.Query(context.Background(), "KILL CONNECTION_ID()", false, &w); !errors.Is(err, sqlerr.ErrFatal) || sqlCode(err) != sqlerr.ErConnectionKilled {
		t.Errorf("KILL CONNECTION_ID(): %v, want fatal 1927", err)
	}
}

func TestSessionShowProcessList(t *testing.T) {
	cfg := plantest.PassthroughConfig()
	cfg.Users = append(cfg.Users, rules.UserConfig{Name: "root", PasswordHash: cfg.Users[0].PasswordHash, Admin: true})
	snap, err := rules.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	long := "SELECT '" + strings.Repeat("x", 200) + "'"
	procs := &fakeProcesses{procs: []Process{
		{ID: 1, User: "app", Host: "h:1", DB: "shop", Command: "Query", Time: 3 * time.Second, State: "executing", Info: long},
		{ID: 2, User: "blogger", Host: "h:2", Command: "Sleep"},
	}}
	r := New(Options{Rules: rules.NewStore(snap), Backend: newFakeBackend(), Processes: procs})
	for _, tc := range []struct {
		user string
		full bool
		ids  string
		info int // length of the first row's Info
	}{
		{"app", false, "1", 100},
		{"app", true, "1", len(long)},
		{"root", false, "1,2", 100},
		{"blogger", false, "2", -1},
	} {
		s := fakeSession(t, r, tc.user, 9)
		res, err := s.procs.show(tc.full, isAdmin(snap, s.user))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, row := range res.rows {
			ids = append(ids, *row[0])
		}
		info := -1
		if len(res.rows) > 0 && res.rows[0][7] != nil {
			info = len(*res.rows[0][7])
		}
		if strings.Join(ids, ",") != tc.ids || info != tc.info {
			t.Errorf("%s (full %v): ids %v, info length %d; want %s, %d", tc.user, tc.full, ids, info, tc.ids, tc.info)
		}
		if tc.user == "app" && (*res.rows[0][5] != "3" || *res.rows[0][3] != "shop" || *res.rows[0][4] != "Query") {
			t.Errorf("row %v", res.rows[0])
		}
	}
}

// stallingBackend hands out connections to a server that takes a command and answers
// nothing until KillQuery, then ERR 1317 (answer set), the packet reply (the statement
// finished before the kill reached it: a late OK) or still nothing: the ways an interrupted
// statement ends.
type stallingBackend struct {
	*fakeBackend
	answer bool
	reply  []byte
	stmt   string // SQL each connection has already prepared (so EXECUTE is its first command)
	conns  []*fakeConn
	wg     sync.WaitGroup
	kill   chan struct{} // closed by a connection's KillQuery
	pipes  []net.Conn
}

func (b *stallingBackend) Acquire(_ context.Context, shard *rules.Shard, _ rules.Role) (Conn, error) {
	client, server := net.Pipe()
	c := &fakeConn{be: b.fakeBackend, shard: shard.Name, id: 7, inUse: true,
		onKill: func() { close(b.kill) }}
	c.st.SetStatus(wire.StatusAutocommit)
	c.w = wire.NewConn(client, 0)
	if b.stmt != "" {
		c.st.PutStmt(engine.StmtKey(c, b.stmt), BackendStmt{ID: 1})
	}
	b.conns = append(b.conns, c)
	b.pipes = append(b.pipes, client, server)
	b.wg.Go(func() {
		sw := wire.NewConn(server, 0)
		if _, err := sw.ReadPacket(); err != nil {
			return
		}
		<-b.kill
		switch {
		case b.reply != nil:
			_ = sw.WritePacket(b.reply)
			_ = sw.Flush()
		case b.answer:
			_ = sw.WritePacket(wire.AppendErr(nil, sqlerr.New(sqlerr.ErQueryInterrupted, "Query execution was interrupted")))
			_ = sw.Flush()
		}
		_, _ = sw.ReadPacket() // until the pipe closes
	})
	return c, nil
}

func (b *stallingBackend) close() {
	for _, p := range b.pipes {
		_ = p.Close()
	}
	b.wg.Wait()
}

func TestSessionInterruptDrains(t *testing.T) {
	for _, tc := range []struct {
		name       string
		answer     bool
		broken     bool
		minElapsed time.Duration
	}{
		{"BackendAnswersTheKill", true, false, 0},
		{"BackendSilentAfterKill", false, true, drainTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := &stallingBackend{fakeBackend: newFakeBackend(), answer: tc.answer, kill: make(chan struct{})}
			defer be.close()
			snap, err := rules.Build(plantest.PassthroughConfig())
			if err != nil {
				t.Fatal(err)
			}
			s := fakeSession(t, New(Options{Rules: rules.NewStore(snap), Backend: be}), "app", 1)
			var w clientRecorder
			start := time.Now()
			err = s.Query(context.Background(), "SELECT /*+ MAX_EXECUTION_TIME(50) */ SLEEP(10)", false, &w)
			elapsed := time.Since(start)
			if sqlCode(err) != sqlerr.ErQueryTimeout {
				t.Fatalf("error %v, want 3024", err)
			}
			if len(be.kills) != 1 || len(be.conns) != 1 {
				t.Fatalf("kills %v on %d connections, want one", be.kills, len(be.conns))
			}
			if be.conns[0].st.Broken() != tc.broken {
				t.Errorf("backend connection broken = %v, want %v", be.conns[0].st.Broken(), tc.broken)
			}
			if elapsed < tc.minElapsed || elapsed > tc.minElapsed+time.Second {
				t.Errorf("answered after %v, want between %v and %v", elapsed, tc.minElapsed, tc.minElapsed+time.Second)
			}
			if len(w.Pkts) != 0 {
				t.Errorf("%d packets reached the client before the error", len(w.Pkts))
			}
		})
	}
}

// TestProcessesList: without the proxy's process list KILL and SHOW PROCESSLIST are
// refused; with it a user sees and kills its own connections, an admin every one.
func TestProcessesList(t *testing.T) {
	var none processes
	if _, err := none.show(false, true); sqlCode(err) != sqlerr.ErNotSupportedYet {
		t.Errorf("SHOW PROCESSLIST without a list: %v", err)
	}
	if err := none.kill(&ast.KillStmt{ConnectionID: 1}, true); sqlCode(err) != sqlerr.ErNotSupportedYet {
		t.Errorf("KILL without a list: %v", err)
	}
	procs := &fakeProcesses{procs: []Process{{ID: 1, User: "app"}, {ID: 2, User: "blogger"}}}
	p := processes{list: procs, connID: 1, user: "app"}
	if res, _ := p.show(false, false); len(res.rows) != 1 {
		t.Errorf("app sees %d connections, want its own", len(res.rows))
	}
	if res, _ := p.show(false, true); len(res.rows) != 2 {
		t.Errorf("an admin sees %d connections, want 2", len(res.rows))
	}
	if err := p.kill(&ast.KillStmt{ConnectionID: 2, Query: true}, false); sqlCode(err) != sqlerr.ErKillDenied {
		t.Errorf("KILL QUERY of another user's connection: %v", err)
	}
	if err := p.kill(&ast.KillStmt{ConnectionID: 2, Query: true}, true); err != nil || strings.Join(procs.kills, ",") != "query 2" {
		t.Errorf("an admin's KILL QUERY 2: %v, killed %q", err, procs.kills)
	}
}
