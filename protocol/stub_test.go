package protocol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// This file holds the test doubles: a Handler whose Sessions record every call and answer
// a few magic statements, a map-backed UserStore, and a server on a loopback listener.

// users is a UserStore over a map of user → password hash.
type users map[string]string

func (u users) LookupUser(name string) (Credential, bool) {
	h, ok := u[name]
	return Credential{Hash: h}, ok
}

// stubHandler creates stubSessions and keeps them for inspection.
type stubHandler struct {
	mu       sync.Mutex
	sessions []*stubSession
	err      error // NewSession fails with it when set

	started chan string   // "block" queries announce themselves here
	release chan struct{} // and wait for this (or their context)
}

func newStubHandler() *stubHandler {
	return &stubHandler{started: make(chan string, 16), release: make(chan struct{})}
}

func (h *stubHandler) NewSession(_ context.Context, info ConnInfo) (Session, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return nil, h.err
	}
	s := &stubSession{h: h, info: info, status: wire.StatusAutocommit, closed: make(chan struct{})}
	h.sessions = append(h.sessions, s)
	return s, nil
}

func (h *stubHandler) setErr(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
}

// session returns the i-th session created.
func (h *stubHandler) session(t *testing.T, i int) *stubSession {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if i >= len(h.sessions) {
		t.Fatalf("session %d was not created (%d sessions)", i, len(h.sessions))
	}
	return h.sessions[i]
}

func (h *stubHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

// execCall is one Execute as the session received it.
type execCall struct {
	stmt   *stubStmt
	params []Param
	cursor bool
}

// stubSession records calls. Query answers by statement text:
//
//	panic          panics
//	block          announces itself on started, waits for release or its context
//	select 1       a one-column, one-row text result
//	fatal          a 1430 error marked ErrFatal
//	lost           a 1430 error marked ErrLost (outcome unknown)
//	client code N  an error with code N (a client-range code, when testing the edge's mapping)
//	error          ERROR 1146
//	plain error    a Go error without a MySQL code
//	deadline       context.DeadlineExceeded
//	canceled       context.Canceled
//	status N       OK with status N
//	anything else  OK with affected rows = len(text)
type stubSession struct {
	h      *stubHandler
	info   ConnInfo
	status uint16

	mu       sync.Mutex
	calls    []string
	execs    []execCall
	closedSt []*stubStmt

	closeOnce sync.Once
	closed    chan struct{}
}

func (s *stubSession) record(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, fmt.Sprintf(format, args...))
}

func (s *stubSession) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func (s *stubSession) Execs() []execCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]execCall(nil), s.execs...)
}

func (s *stubSession) ClosedStmts() []*stubStmt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*stubStmt(nil), s.closedSt...)
}

func (s *stubSession) Query(ctx context.Context, sql string, multi bool, w ResultWriter) error {
	s.record("Query multi=%v %s", multi, sql)
	switch {
	case sql == "panic":
		panic("stub session panics")
	case sql == "block":
		s.h.started <- sql
		select {
		case <-s.h.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	case strings.EqualFold(sql, "select 1"):
		one := "1"
		col := wire.Column{Name: "1", Charset: 63, Length: 1, Type: 0x08, Flags: 0x81}
		return wire.WriteTextResult(w, []wire.Column{col}, [][]*string{{&one}}, s.status)
	case sql == "fatal":
		return fmt.Errorf("%w: %w", sqlerr.ErrFatal, sqlerr.New(sqlerr.ErConnLost, "backend lost"))
	case sql == "lost":
		return sqlerr.Lost(sqlerr.New(sqlerr.ErConnLost, "backend lost, outcome unknown"))
	case strings.HasPrefix(sql, "client code "):
		code, _ := strconv.Atoi(strings.TrimPrefix(sql, "client code "))
		return sqlerr.New(uint16(code), "a client-range code")
	case sql == "error":
		return fmt.Errorf("router: %w", sqlerr.New(1146, "Table 'shop.t' doesn't exist"))
	case sql == "plain error":
		return errors.New("something broke")
	case sql == "deadline":
		return fmt.Errorf("waiting: %w", context.DeadlineExceeded)
	case sql == "canceled":
		return context.Canceled
	case strings.HasPrefix(sql, "status "):
		var st uint16
		_, _ = fmt.Sscan(strings.TrimPrefix(sql, "status "), &st)
		s.status = st
	}
	return w.WritePacket(wire.AppendOK(nil, wire.OK{AffectedRows: uint64(len(sql)), Status: s.status}))
}

func (s *stubSession) UseDB(_ context.Context, db string) error {
	s.record("UseDB %s", db)
	if db == "nope" {
		return sqlerr.New(sqlerr.ErBadDB, "Unknown database '%s'", db)
	}
	return nil
}

func (s *stubSession) FieldList(_ context.Context, table, wildcard string, w ResultWriter) error {
	s.record("FieldList %q %q", table, wildcard)
	if err := w.WritePacket(wire.AppendColumnDef(nil, wire.Column{Table: table, Name: "id", Type: 0x08})); err != nil {
		return err
	}
	return w.WritePacket(wire.AppendEOF(nil, 0, s.status))
}

// stubStmt is a Prepared with one parameter per '?' and one column when the text starts
// with SELECT.
type stubStmt struct {
	sql          string
	params, cols int
}

func (p *stubStmt) NumParams() int { return p.params }
func (p *stubStmt) ParamDefs() [][]byte {
	defs := make([][]byte, p.params)
	for i := range defs {
		defs[i] = wire.AppendColumnDef(nil, wire.Column{Name: "?", Type: 0xfd, Charset: 63})
	}
	return defs
}
func (p *stubStmt) ColumnDefs() [][]byte {
	defs := make([][]byte, p.cols)
	for i := range defs {
		defs[i] = wire.AppendColumnDef(nil, wire.Column{Name: fmt.Sprintf("c%d", i), Type: 0x08, Charset: 63})
	}
	return defs
}

func (s *stubSession) Prepare(_ context.Context, sql string) (Prepared, error) {
	s.record("Prepare %s", sql)
	if sql == "bad" {
		return nil, sqlerr.New(sqlerr.ErParse, "You have an error in your SQL syntax")
	}
	p := &stubStmt{sql: sql, params: strings.Count(sql, "?")}
	if strings.HasPrefix(strings.ToUpper(sql), "SELECT") {
		p.cols = 1
	}
	return p, nil
}

func (s *stubSession) Execute(_ context.Context, stmt Prepared, params []Param, cursor bool, w ResultWriter) error {
	st := stmt.(*stubStmt)
	cp := make([]Param, len(params))
	for i, p := range params {
		cp[i] = p
		cp[i].Value = bytes.Clone(p.Value)
	}
	s.mu.Lock()
	s.execs = append(s.execs, execCall{stmt: st, params: cp, cursor: cursor})
	s.mu.Unlock()
	s.record("Execute %s", st.sql)
	if st.cols > 0 {
		// A binary result: count, definitions, EOF, one row (header 0x00, null bitmap,
		// an 8-byte integer), EOF.
		if err := w.WritePacket([]byte{byte(st.cols)}); err != nil {
			return err
		}
		for _, d := range st.ColumnDefs() {
			if err := w.WritePacket(d); err != nil {
				return err
			}
		}
		if err := w.WritePacket(wire.AppendEOF(nil, 0, s.status)); err != nil {
			return err
		}
		row := []byte{0x00, 0x00, 42, 0, 0, 0, 0, 0, 0, 0}
		if err := w.WritePacket(row); err != nil {
			return err
		}
		return w.WritePacket(wire.AppendEOF(nil, 0, s.status))
	}
	return w.WritePacket(wire.AppendOK(nil, wire.OK{AffectedRows: uint64(len(params)), Status: s.status}))
}

func (s *stubSession) CloseStmt(stmt Prepared) {
	st := stmt.(*stubStmt)
	s.mu.Lock()
	s.closedSt = append(s.closedSt, st)
	s.mu.Unlock()
	s.record("CloseStmt %s", st.sql)
}

func (s *stubSession) Reset(context.Context) error {
	s.record("Reset")
	s.status = wire.StatusAutocommit
	return nil
}

func (s *stubSession) Status() uint16 { return s.status }

// Abandon records that the server gave up the session after a panic (before Close).
func (s *stubSession) Abandon() { s.record("Abandon") }

func (s *stubSession) Close() {
	s.record("Close")
	s.closeOnce.Do(func() { close(s.closed) })
}

// waitClosed waits until the server has closed the session.
func (s *stubSession) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("session was never closed")
	}
}

// testServer is a Server on a loopback listener, closed when the test ends.
type testServer struct {
	*Server
	addr  string
	h     *stubHandler
	serve chan error
}

const (
	nativeUser = "native"
	sha2User   = "sha2"
	password   = "s3cret pass"
)

// startServer runs a Server with users "native" and "sha2" (both with password) on
// 127.0.0.1:0.
func startServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	return startServerOn(t, opts, nil)
}

// startServerOn is startServer with the listener wrapped by wrap (when not nil).
func startServerOn(t *testing.T, opts Options, wrap func(net.Listener) net.Listener) *testServer {
	t.Helper()
	sha2Hash, err := HashSha2(password)
	if err != nil {
		t.Fatal(err)
	}
	h := newStubHandler()
	u := users{nativeUser: HashNative(password), sha2User: sha2Hash}
	s, err := NewServer(opts, u, h)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, addr: ln.Addr().String(), h: h, serve: make(chan error, 1)}
	served := ln
	if wrap != nil {
		served = wrap(ln)
	}
	go func() { ts.serve <- s.Serve(served) }()
	t.Cleanup(func() {
		_ = s.Close()
		_ = ln.Close()
		if err := <-ts.serve; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ts
}
