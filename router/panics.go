package router

import (
	"log/slog"
	"runtime/debug"
	"slices"

	"github.com/shardproxy/shardproxy/router/engine"
)

// A panic in the proxy (a defect, or backend bytes that no check caught) must fail only
// the statement or the session it happened in, never the process. The session's own
// goroutine is guarded by the protocol layer, which closes the client connection and calls
// Abandon; the goroutines the router starts itself (scatter drains, the branches of a
// multi-shard write) recover here and fail their branch, with the connection marked broken.

// heldConns is the backend connections a session holds: acquired from the backend and not
// yet released. It gives each back once, and turns a panic in a goroutine working on one
// into that connection's loss. The Session sets every field; not safe for concurrent use
// (recovered is, as it touches only its connection and the logger).
type heldConns struct {
	be     Backend
	log    *slog.Logger
	connID uint32 // the client connection, for the log
	conns  []Conn
}

// hold records that the session holds c.
func (h *heldConns) hold(c Conn) { h.conns = append(h.conns, c) }

// holds reports whether the session holds c (acquired and not yet given back).
func (h *heldConns) holds(c Conn) bool { return slices.Contains(h.conns, c) }

// release gives c back to the backend, once: a connection the session no longer holds was
// given back already, and may by now be another session's (a second release would put a
// connection in use back in the pool), so it is left alone.
func (h *heldConns) release(c Conn) {
	i := slices.Index(h.conns, c)
	if i < 0 {
		h.log.Error("router: a backend connection was released twice; the second release is ignored",
			"conn_id", h.connID, "backend", c.Server(), "backend_conn", c.ID())
		return
	}
	h.conns = slices.Delete(h.conns, i, i+1)
	h.be.Release(c)
}

// abandon marks every connection held broken and gives it back (the pool closes it).
func (h *heldConns) abandon() {
	for _, c := range slices.Clone(h.conns) {
		c.State().MarkBroken()
		h.release(c)
	}
}

// Abandon is called once the session's goroutine panicked: every backend connection the
// session holds is in an unknown state, so each is marked broken and given back (the pool
// closes it; an open transaction on it is rolled back by the server). The session must not
// be used afterwards except for Close.
func (s *Session) Abandon() {
	for name := range s.pinned {
		delete(s.pinned, name)
	}
	s.held.abandon()
	clear(s.last)
}

// errPanicked is what a recovered panic becomes (engine.Panicked).
func errPanicked(v any) error { return engine.Panicked(v) }

// recovered turns a panic in a goroutine working on c into an error in *err, logged with
// its stack; c is marked broken. Deferred as `defer s.held.recovered(c, &err)`.
func (h *heldConns) recovered(c Conn, err *error) {
	r := recover()
	if r == nil {
		return
	}
	h.log.Error("panic while handling backend connection; it is closed", "conn_id", h.connID, "backend_conn", c.ID(), "panic", r, "stack", string(debug.Stack()))
	c.State().MarkBroken()
	*err = errPanicked(r)
}
