package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options wire the server to the proxy. Proxy and Access are required; a nil optional
// interface makes its endpoints answer 501.
type Options struct {
	Proxy    Proxy
	Access   Access
	Backends Backends
	Shards   func() []Shard
	// Failovers lists the most recent failover events, oldest first; nil: 501.
	Failovers func() []Failover
	Rules     func() any // the configuration without secrets
	Sessions  Sessions
	Planner   Planner
	XA        XA
	Switcher  Switcher     // planned switchovers; nil: 501
	Metrics   http.Handler // serves /metrics; nil: 404
	Logger    *slog.Logger // nil discards
}

// Roles, as in the configuration.
const (
	RoleRead  = "read"
	RoleAdmin = "admin"
)

// Server is the admin HTTP handler. It is safe for concurrent use; it starts no goroutine.
type Server struct {
	o   Options
	mux *http.ServeMux

	mu     sync.Mutex
	events []Event // admin actions, most recent last, at most maxEvents
}

// Event is an action taken through the API, for the status page.
type Event struct {
	Time   time.Time `json:"time"`
	Token  string    `json:"token"`
	Action string    `json:"action"`
	Result string    `json:"result"`
}

const maxEvents = 50

// New returns the server.
func New(o Options) (*Server, error) {
	if o.Proxy == nil || o.Access == nil {
		return nil, errors.New("admin: Options.Proxy and Options.Access are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{o: o, mux: http.NewServeMux()}
	s.routes()
	return s, nil
}

// ServeHTTP authenticates the request and dispatches it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) routes() {
	open := func(name string, h http.HandlerFunc) http.HandlerFunc { return s.auth(name, RoleRead, h) }
	read := func(h http.HandlerFunc) http.HandlerFunc { return s.auth("", RoleRead, h) }
	admin := func(h http.HandlerFunc) http.HandlerFunc { return s.auth("", RoleAdmin, h) }
	s.mux.HandleFunc("GET /healthz", open("healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	s.mux.HandleFunc("GET /readyz", open("readyz", s.readyz))
	s.mux.HandleFunc("GET /metrics", open("metrics", s.metrics))
	s.mux.HandleFunc("GET /{$}", open("status", s.page))
	s.mux.HandleFunc("GET /api/v1/status", read(func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, s.status()) }))
	s.mux.HandleFunc("GET /api/v1/reloads", read(func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, s.o.Proxy.Reloads()) }))
	s.mux.HandleFunc("GET /api/v1/backends", read(s.backends))
	s.mux.HandleFunc("GET /api/v1/shards", read(s.shards))
	s.mux.HandleFunc("GET /api/v1/failovers", read(func(w http.ResponseWriter, _ *http.Request) {
		if s.o.Failovers == nil {
			writeError(w, http.StatusNotImplemented, "failover events are not available")
			return
		}
		writeJSON(w, 200, s.o.Failovers())
	}))
	s.mux.HandleFunc("GET /api/v1/rules", read(s.rules))
	s.mux.HandleFunc("GET /api/v1/sessions", read(s.sessions))
	s.mux.HandleFunc("GET /api/v1/plan", read(s.plan))
	s.mux.HandleFunc("GET /api/v1/xa", read(s.xa))
	s.mux.HandleFunc("GET /api/v1/events", read(func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, s.Events()) }))
	s.mux.HandleFunc("POST /api/v1/reload", admin(s.reload))
	s.mux.HandleFunc("POST /api/v1/backends/{name}/offline", admin(s.offline))
	s.mux.HandleFunc("POST /api/v1/backends/{name}/online", admin(s.online))
	s.mux.HandleFunc("POST /api/v1/sessions/{id}/kill", admin(s.kill))
	s.mux.HandleFunc("POST /api/v1/shards/{name}/switchover", admin(s.switchover))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			r2 := r.Clone(r.Context())
			r2.Method = m
			if _, pattern := s.mux.Handler(r2); pattern != "/" {
				w.Header().Set("Allow", m)
				writeError(w, http.StatusMethodNotAllowed, "%s %s: use %s", r.Method, r.URL.Path, m)
				return
			}
		}
		writeError(w, http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	})
}

type ctxToken struct{}

// auth checks the bearer token against the live tokens: none → 401, a role too weak → 403.
// An endpoint named in the configuration's open list needs no token.
func (s *Server) auth(openName, role string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tokens, open := s.o.Access.Tokens()
		if openName != "" && slices.Contains(open, openName) {
			h(w, r)
			return
		}
		tok, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shardproxy"`)
			if openName == "status" { // a browser asks for a user name and the token as password
				w.Header().Add("WWW-Authenticate", `Basic realm="shardproxy (password: a token)"`)
			}
			writeError(w, http.StatusUnauthorized, "a bearer token is required")
			return
		}
		t, ok := match(tokens, tok)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shardproxy", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unknown token")
			return
		}
		if role == RoleAdmin && t.Role != RoleAdmin {
			writeError(w, http.StatusForbidden, "token %q has role %s; this needs admin", t.Name, t.Role)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxToken{}, t.Name))) // the name, for the event log

	}
}

// bearer returns the request's token: "Authorization: Bearer TOKEN", or the password of
// HTTP basic authentication (what a browser sends for the status page).
func bearer(r *http.Request) (string, bool) {
	if _, pw, ok := r.BasicAuth(); ok {
		return pw, pw != ""
	}
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// match compares the token's SHA-256 with every configured hash in constant time.
func match(tokens []Token, tok string) (Token, bool) {
	sum := sha256.Sum256([]byte(tok))
	var found Token
	ok := false
	for _, t := range tokens {
		want, err := hex.DecodeString(t.SHA256)
		if err != nil || len(want) != len(sum) {
			continue
		}
		if subtle.ConstantTimeCompare(want, sum[:]) == 1 && !ok {
			found, ok = t, true
		}
	}
	return found, ok
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// errorBody is every error response.
type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, errorBody{Error: fmt.Sprintf(format, args...), Status: code})
}

func (s *Server) status() Status {
	st := s.o.Proxy.Status()
	st.Uptime = time.Since(st.StartedAt).Truncate(time.Second).String()
	return st
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ok, why := s.o.Proxy.Ready(r.Context())
	if !ok {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": why})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true})
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.o.Metrics == nil {
		writeError(w, http.StatusNotFound, "metrics are not enabled")
		return
	}
	s.o.Metrics.ServeHTTP(w, r)
}

func (s *Server) backends(w http.ResponseWriter, _ *http.Request) {
	if s.o.Backends == nil {
		writeError(w, http.StatusNotImplemented, "backends are not available")
		return
	}
	writeJSON(w, 200, s.o.Backends.Backends())
}

func (s *Server) shards(w http.ResponseWriter, _ *http.Request) {
	if s.o.Shards == nil {
		writeError(w, http.StatusNotImplemented, "shards are not available")
		return
	}
	writeJSON(w, 200, s.o.Shards())
}

func (s *Server) rules(w http.ResponseWriter, _ *http.Request) {
	if s.o.Rules == nil {
		writeError(w, http.StatusNotImplemented, "rules are not available")
		return
	}
	writeJSON(w, 200, s.o.Rules())
}

func (s *Server) sessions(w http.ResponseWriter, _ *http.Request) {
	if s.o.Sessions == nil {
		writeError(w, http.StatusNotImplemented, "sessions are not available")
		return
	}
	writeJSON(w, 200, s.o.Sessions.Sessions())
}

func (s *Server) plan(w http.ResponseWriter, r *http.Request) {
	if s.o.Planner == nil {
		writeError(w, http.StatusNotImplemented, "route plans are not available")
		return
	}
	q := r.URL.Query()
	sql := q.Get("sql")
	if strings.TrimSpace(sql) == "" {
		writeError(w, http.StatusBadRequest, "the sql parameter is required")
		return
	}
	steps, err := s.o.Planner.Explain(r.Context(), q.Get("user"), q.Get("db"), sql)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "%v", err)
		return
	}
	writeJSON(w, 200, map[string]any{"plan": steps})
}

func (s *Server) xa(w http.ResponseWriter, r *http.Request) {
	if s.o.XA == nil {
		writeError(w, http.StatusNotImplemented, "XA recovery state is not available")
		return
	}
	bs, err := s.o.XA.Pending(r.Context())
	if err != nil {
		writeError(w, http.StatusBadGateway, "%v", err)
		return
	}
	if bs == nil {
		bs = []XABranch{}
	}
	writeJSON(w, 200, map[string]any{"pending": bs})
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	res := s.o.Proxy.Reload(r.Context())
	s.event(r, "reload", res.Result)
	code := http.StatusOK
	if res.Result == "rejected" {
		code = http.StatusUnprocessableEntity
	} else if res.Result == "failed" {
		code = http.StatusBadGateway
	}
	writeJSON(w, code, res)
}

func (s *Server) offline(w http.ResponseWriter, r *http.Request) {
	if s.o.Backends == nil {
		writeError(w, http.StatusNotImplemented, "backends are not available")
		return
	}
	name := r.PathValue("name")
	open, err := s.o.Backends.SetOffline(r.Context(), name)
	if err != nil {
		s.event(r, "offline "+name, err.Error())
		writeError(w, http.StatusNotFound, "%v", err)
		return
	}
	s.event(r, "offline "+name, fmt.Sprintf("drained (%d connections still open)", open))
	writeJSON(w, 200, map[string]any{"backend": name, "state": "offline", "open_connections": open})
}

func (s *Server) online(w http.ResponseWriter, r *http.Request) {
	if s.o.Backends == nil {
		writeError(w, http.StatusNotImplemented, "backends are not available")
		return
	}
	name := r.PathValue("name")
	if err := s.o.Backends.SetOnline(name); err != nil {
		s.event(r, "online "+name, err.Error())
		writeError(w, http.StatusNotFound, "%v", err)
		return
	}
	s.event(r, "online "+name, "ok")
	writeJSON(w, 200, map[string]any{"backend": name, "state": "online"})
}

func (s *Server) kill(w http.ResponseWriter, r *http.Request) {
	if s.o.Sessions == nil {
		writeError(w, http.StatusNotImplemented, "sessions are not available")
		return
	}
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
	if err != nil {
		writeError(w, http.StatusBadRequest, "session id %q is not a number", r.PathValue("id"))
		return
	}
	query := r.URL.Query().Get("query") == "1"
	what := "kill session " + strconv.FormatUint(id, 10)
	if query {
		what = "kill query of session " + strconv.FormatUint(id, 10)
	}
	if !s.o.Sessions.Kill(uint32(id), query) {
		s.event(r, what, "no such session")
		writeError(w, http.StatusNotFound, "no session %d", id)
		return
	}
	s.event(r, what, "ok")
	writeJSON(w, 200, map[string]any{"killed": id, "query_only": query})
}

func (s *Server) event(r *http.Request, action, result string) {
	name, _ := r.Context().Value(ctxToken{}).(string)
	e := Event{Time: time.Now(), Token: name, Action: action, Result: result}
	s.o.Logger.Info("admin action", "token", e.Token, "action", action, "result", result)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
	if len(s.events) > maxEvents {
		s.events = s.events[len(s.events)-maxEvents:]
	}
}

// Events returns the admin actions taken, most recent last.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}
