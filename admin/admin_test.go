package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

func hashOf(tok string) string { s := sha256.Sum256([]byte(tok)); return hex.EncodeToString(s[:]) }

// fakeProxy records the calls the server makes (the server's own logic is under test).
type fakeProxy struct {
	reloads  int
	ready    bool
	killed   []uint32
	offlines []string
}

func (f *fakeProxy) Status() Status {
	return Status{Version: "v-test", StartedAt: time.Now().Add(-time.Minute), Config: "etcd:/p/", Revision: 7,
		LastReload: Reload{Result: "applied", Trigger: "start", Revision: 7}}
}
func (f *fakeProxy) Reloads() []Reload {
	return []Reload{{Result: "applied", Trigger: "start", Revision: 7}, {Result: "rejected", Trigger: "watch", Revision: 8, Error: `default_shard "s9" is not a shard`}}
}
func (f *fakeProxy) Reload(context.Context) Reload {
	f.reloads++
	return Reload{Result: "unchanged", Revision: 7}
}
func (f *fakeProxy) Ready(context.Context) (bool, string) {
	if f.ready {
		return true, ""
	}
	return false, "shard s1: primary b1 is offline"
}
func (f *fakeProxy) Tokens() ([]Token, []string) {
	return []Token{{Name: "viewer", Role: RoleRead, SHA256: hashOf("read-tok")}, {Name: "ops", Role: RoleAdmin, SHA256: hashOf("admin-tok")}}, []string{"healthz"}
}
func (f *fakeProxy) Backends() []Backend {
	return []Backend{{Name: "b0", Addr: "10.0.0.1:3306", Roles: []string{"primary of s0"}, State: "online", Health: "up", Pool: &Pool{MaxOpen: 10, Open: 3, Idle: 2, InUse: 1}},
		{Name: "b1", Addr: "10.0.0.2:3306", Roles: []string{"primary of s1"}, State: "offline", Health: "down", Reason: "dial tcp: refused"}}
}
func (f *fakeProxy) SetOffline(_ context.Context, name string) (int, error) {
	if name != "b0" && name != "b1" {
		return 0, errors.New("unknown backend " + name)
	}
	f.offlines = append(f.offlines, name)
	return 0, nil
}
func (f *fakeProxy) SetOnline(string) error { return nil }
func (f *fakeProxy) Sessions() []Session {
	return []Session{{ID: 12, User: "app", Host: "10.1.1.1:5000", DB: "shop", Command: "Query", Seconds: 3, Digest: "SELECT * FROM `orders` WHERE `id` = ?"}}
}
func (f *fakeProxy) Kill(id uint32, _ bool) bool {
	if id != 12 {
		return false
	}
	f.killed = append(f.killed, id)
	return true
}
func (f *fakeProxy) Explain(_ context.Context, _, db, sql string) ([]PlanStep, error) {
	if db == "" {
		return nil, errors.New("No database selected")
	}
	return []PlanStep{{Step: "route", Shard: "s0", Detail: sql}}, nil
}
func (f *fakeProxy) Pending(context.Context) ([]XABranch, error) { return nil, nil }

func newTestServer(t *testing.T) (*httptest.Server, *fakeProxy) {
	t.Helper()
	f := &fakeProxy{ready: true}
	s, err := New(Options{Proxy: f, Access: f, Backends: f, Sessions: f, Planner: f, XA: f,
		Shards: func() []Shard {
			return []Shard{{Name: "s0", Database: "shop_0", Primary: "b0", Databases: []string{"shop"}}}
		},
		Failovers: func() []Failover {
			return []Failover{{Kind: "promoted", Mode: "follow", Backend: "b0", NewPrimary: "b1", Shards: []string{"s0"}, Seconds: 0.4}}
		},
		Rules:   func() any { return map[string]any{"listen": "127.0.0.1:3307"} },
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "shardproxy_up 1\n") }),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, f
}

func do(t *testing.T, ts *httptest.Server, method, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestTokens(t *testing.T) {
	ts, f := newTestServer(t)
	cases := []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/api/v1/status", "", 401},
		{"GET", "/api/v1/status", "wrong", 401},
		{"GET", "/api/v1/status", "read-tok", 200},
		{"GET", "/api/v1/status", "admin-tok", 200},
		{"POST", "/api/v1/reload", "", 401},
		{"POST", "/api/v1/reload", "read-tok", 403},
		{"POST", "/api/v1/reload", "admin-tok", 200},
		{"POST", "/api/v1/sessions/12/kill", "read-tok", 403},
		{"POST", "/api/v1/backends/b0/offline", "read-tok", 403},
		{"GET", "/healthz", "", 200}, // open by configuration
		{"GET", "/readyz", "", 401},  // not open
		{"GET", "/metrics", "", 401},
		{"GET", "/metrics", "read-tok", 200},
		{"GET", "/", "", 401},
		{"GET", "/", "read-tok", 200},
	}
	for _, c := range cases {
		code, body := do(t, ts, c.method, c.path, c.token)
		if code != c.want {
			t.Errorf("%s %s with %q: %d, want %d (%s)", c.method, c.path, c.token, code, c.want, body)
		}
		if code >= 400 {
			var e errorBody
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Status != code || e.Error == "" {
				t.Errorf("%s %s: error body %q is not {error, status}", c.method, c.path, body)
			}
		}
	}
	if f.reloads != 1 {
		t.Errorf("reloads = %d, want 1 (only the admin token's)", f.reloads)
	}
	// A browser's basic authentication carries the token as its password.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", ts.URL+"/", nil)
	req.SetBasicAuth("anyone", "read-tok")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("basic auth: %d", resp.StatusCode)
	}
}

func TestEndpoints(t *testing.T) {
	ts, f := newTestServer(t)
	cases := []struct {
		method, path string
		want         int
		frag         string
	}{
		{"GET", "/api/v1/status", 200, `"config_revision": 7`},
		{"GET", "/api/v1/reloads", 200, `default_shard \"s9\" is not a shard`},
		{"GET", "/api/v1/backends", 200, `"in_use": 1`},
		{"GET", "/api/v1/shards", 200, `"primary": "b0"`},
		{"GET", "/api/v1/rules", 200, `"listen"`},
		{"GET", "/api/v1/sessions", 200, "`id` = ?"},
		{"GET", "/api/v1/plan?db=shop&sql=SELECT+1", 200, `"step": "route"`},
		{"GET", "/api/v1/plan?sql=SELECT+1", 422, "No database selected"},
		{"GET", "/api/v1/plan", 400, "sql parameter"},
		{"GET", "/api/v1/xa", 200, `"pending": []`},
		{"GET", "/api/v1/failovers", 200, `"new_primary": "b1"`},
		{"GET", "/readyz", 200, `"ready": true`},
		{"POST", "/api/v1/sessions/12/kill", 200, `"killed": 12`},
		{"POST", "/api/v1/sessions/13/kill", 404, "no session 13"},
		{"POST", "/api/v1/sessions/x/kill", 400, "not a number"},
		{"POST", "/api/v1/backends/b0/offline", 200, `"state": "offline"`},
		{"POST", "/api/v1/backends/b9/offline", 404, "unknown backend b9"},
		{"POST", "/api/v1/backends/b0/online", 200, `"state": "online"`},
		{"GET", "/api/v1/nothing", 404, "no such endpoint"},
		{"DELETE", "/api/v1/status", 405, ""},
		{"GET", "/api/v1/events", 200, `"action": "offline b0"`},
	}
	for _, c := range cases {
		code, body := do(t, ts, c.method, c.path, "admin-tok")
		if code != c.want || !strings.Contains(body, c.frag) {
			t.Errorf("%s %s: %d %s; want %d containing %q", c.method, c.path, code, body, c.want, c.frag)
		}
	}
	f.ready = false
	if code, body := do(t, ts, "GET", "/readyz", "read-tok"); code != 503 || !strings.Contains(body, "b1 is offline") {
		t.Errorf("readyz when not ready: %d %s", code, body)
	}
	if len(f.killed) != 1 || len(f.offlines) != 1 {
		t.Errorf("killed %v, offline %v", f.killed, f.offlines)
	}
}

// TestStatusPage parses the page as HTML and checks its tables.
func TestStatusPage(t *testing.T) {
	ts, _ := newTestServer(t)
	code, body := do(t, ts, "GET", "/", "read-tok")
	if code != 200 {
		t.Fatalf("GET /: %d", code)
	}
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string][][]string{} // id → rows of cell texts
	var walk func(n *html.Node, table string)
	walk = func(n *html.Node, table string) {
		if n.Type == html.ElementNode && n.Data == "table" {
			for _, a := range n.Attr {
				if a.Key == "id" {
					table = a.Val
				}
			}
		}
		if n.Type == html.ElementNode && n.Data == "tr" && table != "" {
			var row []string
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode && (c.Data == "td" || c.Data == "th") {
					row = append(row, strings.TrimSpace(textOf(c)))
				}
			}
			tables[table] = append(tables[table], row)
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, table)
		}
	}
	walk(doc, "")
	want := map[string][]string{
		"shards":   {"s0", "shop", "shop_0", "b0", "-", "-"},
		"backends": {"b0", "10.0.0.1:3306", "primary of s0", "online", "up", "-", "3/10", "2", "1", "0", "0", "0.000 s"},
		"sessions": {"12", "app", "10.1.1.1:5000", "shop", "Query", "3 s", "SELECT * FROM `orders` WHERE `id` = ?"},
	}
	for id, row := range want {
		rows := tables[id]
		if len(rows) < 2 || strings.Join(rows[1], "|") != strings.Join(row, "|") {
			t.Errorf("table %s: rows %q, want a first data row %q", id, rows, row)
		}
	}
	if r := tables["backends"]; len(r) < 3 || r[2][3] != "offline" || r[2][4] != "down dial tcp: refused" || r[2][6] != "no pool" {
		t.Errorf("offline backend row: %q", r)
	}
	if r := tables["reloads"]; len(r) != 3 || r[1][2] != "rejected" {
		t.Errorf("reloads (most recent first): %q", r)
	}
}

func textOf(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(textOf(c))
	}
	return b.String()
}
