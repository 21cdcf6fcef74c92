package router

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/router/planner/plantest"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// closingBackend hands out, once dead is set, connections whose server closed them: every
// command is accepted and the answer is EOF (MariaDB closing a killed session, a restart).
type closingBackend struct {
	*fakeBackend
	dead bool
}

func (b *closingBackend) Acquire(ctx context.Context, shard *rules.Shard, role rules.Role) (Conn, error) {
	if !b.dead {
		return b.fakeBackend.Acquire(ctx, shard, role)
	}
	b.mu.Lock()
	b.nextID++
	c := &fakeConn{be: b.fakeBackend, shard: shard.Name, id: b.nextID, inUse: true}
	c.st.SetStatus(wire.StatusAutocommit)
	b.mu.Unlock()
	c.w = wire.NewConn(closedNet{}, 0)
	return c, nil
}

// closedNet is a socket whose peer has closed it: writes land in the kernel's buffer,
// reads get EOF.
type closedNet struct{}

func (closedNet) Write(b []byte) (int, error)      { return len(b), nil }
func (closedNet) Read([]byte) (int, error)         { return 0, io.EOF }
func (closedNet) Close() error                     { return nil }
func (closedNet) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (closedNet) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (closedNet) SetDeadline(time.Time) error      { return nil }
func (closedNet) SetReadDeadline(time.Time) error  { return nil }
func (closedNet) SetWriteDeadline(time.Time) error { return nil }

// lateTimer is a context whose deadline has passed while its timer has not yet marked it
// done: what a statement's context looks like for a moment on a loaded machine, where the
// runtime runs the timer late.
type lateTimer struct {
	context.Context
	deadline time.Time
}

func (c lateTimer) Deadline() (time.Time, bool) { return c.deadline, true }

// TestSessionDeadlinePassedBackendLost: a read whose backend connection dies (EOF) after its
// deadline passed answers 3024, whether or not the context's timer has fired yet, and is not
// retried on another connection; one whose deadline has not passed still answers 1430 (after
// one retry: readretry.go) — the statement's own loss, not its deadline. A write's outcome is
// unknown either way: its client connection is closed (sqlerr.ErrLost).
func TestSessionDeadlinePassedBackendLost(t *testing.T) {
	const read = "SELECT /*+ MAX_EXECUTION_TIME(50) */ SLEEP(1)"
	const write = "INSERT /*+ MAX_EXECUTION_TIME(50) */ INTO shop.t (a) VALUES (1)"
	for _, tc := range []struct {
		name     string
		query    string
		prepared bool
		late     bool   // the deadline passed, its timer not yet run
		code     uint16 // 0: the client connection is closed, outcome unknown
		conns    uint32 // backend connections the statement used
	}{
		{"QueryDeadlinePassed", read, false, true, sqlerr.ErQueryTimeout, 1},
		{"ExecuteDeadlinePassed", read, true, true, sqlerr.ErQueryTimeout, 1},
		{"QueryWithinDeadline", read, false, false, sqlerr.ErConnLost, 2},
		{"ExecuteWithinDeadline", read, true, false, sqlerr.ErConnLost, 2},
		{"WriteDeadlinePassed", write, false, true, 0, 1},
		{"ExecuteWriteDeadlinePassed", write, true, true, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := &closingBackend{fakeBackend: newFakeBackend()}
			snap, err := rules.Build(plantest.PassthroughConfig())
			if err != nil {
				t.Fatal(err)
			}
			s := fakeSession(t, New(Options{Rules: rules.NewStore(snap), Backend: be}), "app", 1)
			var st *Stmt
			if tc.prepared {
				if st, err = s.Prepare(context.Background(), tc.query); err != nil {
					t.Fatal(err)
				}
			}
			be.dead = true
			be.mu.Lock()
			clear(be.idle) // every pooled connection is gone with its server
			first := be.nextID
			be.mu.Unlock()
			ctx := context.Background()
			if tc.late {
				ctx = lateTimer{Context: ctx, deadline: time.Now().Add(-time.Millisecond)}
			}
			var w clientRecorder
			if tc.prepared {
				err = s.Execute(ctx, st, nil, &w)
			} else {
				err = s.Query(ctx, tc.query, false, &w)
			}
			if lost := errors.Is(err, sqlerr.ErrLost); lost != (tc.code == 0) {
				t.Errorf("error %v: client connection closed = %v, want %v", err, lost, tc.code == 0)
			}
			if got := sqlCode(err); tc.code != 0 && got != tc.code {
				t.Errorf("error %v (code %d), want code %d", err, got, tc.code)
			}
			if n := be.nextID - first; n != tc.conns {
				t.Errorf("the statement used %d backend connections, want %d", n, tc.conns)
			}
			if len(w.Pkts) != 0 {
				t.Errorf("%d packets reached the client before the error", len(w.Pkts))
			}
		})
	}
}

// TestSessionInterruptedWrite: a write whose deadline passes while it runs is killed, and the
// client learns what the backend did: the OK that arrives after the kill (the write had
// finished) is relayed as is; the backend's ERR for the kill is the interruption (3024);
// no answer at all (the drain gives up) is an unknown outcome, said by closing the client
// connection. A read in the same spot answers 3024 whatever came back.
func TestSessionInterruptedWrite(t *testing.T) {
	const write = "UPDATE /*+ MAX_EXECUTION_TIME(50) */ shop.t SET a = 2"
	const read = "SELECT /*+ MAX_EXECUTION_TIME(50) */ a FROM shop.t"
	lateOK := wire.AppendOK(nil, wire.OK{AffectedRows: 1, Status: wire.StatusAutocommit})
	const lost = 1
	for _, tc := range []struct {
		name     string
		query    string
		prepared bool
		answer   bool   // ERR 1317 after the kill
		reply    []byte // this packet after the kill
		code     uint16 // 0: the OK reached the client; lost: the client connection is closed
	}{
		{"WriteLateOK", write, false, false, lateOK, 0},
		{"ExecuteWriteLateOK", write, true, false, lateOK, 0},
		{"WriteKilled", write, false, true, nil, sqlerr.ErQueryTimeout},
		{"ExecuteWriteKilled", write, true, true, nil, sqlerr.ErQueryTimeout},
		{"WriteNoAnswer", write, false, false, nil, lost},
		{"ExecuteWriteNoAnswer", write, true, false, nil, lost},
		{"ReadLateOK", read, false, false, lateOK, sqlerr.ErQueryTimeout},
		{"ReadNoAnswer", read, false, false, nil, sqlerr.ErQueryTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := &stallingBackend{fakeBackend: newFakeBackend(), answer: tc.answer, reply: tc.reply, kill: make(chan struct{})}
			defer be.close()
			snap, err := rules.Build(plantest.PassthroughConfig())
			if err != nil {
				t.Fatal(err)
			}
			s := fakeSession(t, New(Options{Rules: rules.NewStore(snap), Backend: be}), "app", 1)
			st := &Stmt{}
			if tc.prepared {
				// The statement is prepared on a fake backend; its EXECUTE meets the stalling one.
				s0 := fakeSession(t, New(Options{Rules: rules.NewStore(snap), Backend: newFakeBackend()}), "app", 2)
				if st, err = s0.Prepare(context.Background(), tc.query); err != nil {
					t.Fatal(err)
				}
				be.stmt = st.sql
			}
			var w clientRecorder
			if tc.prepared {
				err = s.Execute(context.Background(), st, nil, &w)
			} else {
				err = s.Query(context.Background(), tc.query, false, &w)
			}
			got := sqlCode(err)
			if errors.Is(err, sqlerr.ErrLost) {
				got = lost
			}
			if got != tc.code {
				t.Fatalf("error %v (code %d), want code %d", err, got, tc.code)
			}
			if len(be.kills) != 1 {
				t.Errorf("kills %v, want one", be.kills)
			}
			oks := w.oks()
			if tc.code == 0 && (len(oks) != 1 || oks[0].AffectedRows != 1) {
				t.Errorf("the client got %v, want the backend's OK (1 row affected)", oks)
			}
			if tc.code != 0 && len(w.Pkts) != 0 {
				t.Errorf("%d packets reached the client with the error", len(w.Pkts))
			}
		})
	}
}
