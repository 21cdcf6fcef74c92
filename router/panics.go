package router

import (
	"runtime/debug"
	"slices"

	"github.com/shardproxy/shardproxy/router/engine"
)

// A panic in the proxy (a defect, or backend bytes that no check caught) must fail only
// the statement or the session it happened in, never the process. The session's own
// goroutine is guarded by the protocol layer, which closes the client connection and calls
// Abandon; the goroutines the router starts itself (scatter drains, the branches of a
// multi-shard write) recover here and fail their branch, with the connection marked broken.

// hold records that the session holds c (acquired from the backend and not yet released).
func (s *Session) hold(c Conn) { s.held = append(s.held, c) }

// holds reports whether the session holds c (acquired and not yet given back).
func (s *Session) holds(c Conn) bool { return slices.Contains(s.held, c) }

// release gives c back to the backend, once: a connection the session no longer holds was
// given back already, and may by now be another session's (a second release would put a
// connection in use back in the pool), so it is left alone.
func (s *Session) release(c Conn) {
	i := slices.Index(s.held, c)
	if i < 0 {
		s.r.log.Error("router: a backend connection was released twice; the second release is ignored",
			"conn_id", s.info.ConnID, "backend", c.Server(), "backend_conn", c.ID())
		return
	}
	s.held = slices.Delete(s.held, i, i+1)
	s.r.be.Release(c)
}

// Abandon is called once the session's goroutine panicked: every backend connection the
// session holds is in an unknown state, so each is marked broken and given back (the pool
// closes it; an open transaction on it is rolled back by the server). The session must not
// be used afterwards except for Close.
func (s *Session) Abandon() {
	for name := range s.pinned {
		delete(s.pinned, name)
	}
	for _, c := range slices.Clone(s.held) {
		c.MarkBroken()
		s.release(c)
	}
	clear(s.last)
}

// errPanicked is what a recovered panic becomes (engine.Panicked).
func errPanicked(v any) error { return engine.Panicked(v) }

// recovered turns a panic in a goroutine working on c into an error in *err, logged with
// its stack; c is marked broken. Deferred as `defer s.recovered(c, &err)`.
func (s *Session) recovered(c Conn, err *error) {
	r := recover()
	if r == nil {
		return
	}
	s.r.log.Error("panic while handling backend connection; it is closed", "conn_id", s.info.ConnID, "backend_conn", c.ID(), "panic", r, "stack", string(debug.Stack()))
	c.MarkBroken()
	*err = errPanicked(r)
}
