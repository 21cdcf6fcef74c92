package integration

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/mariadbtest"
)

// Secrets of the admin suite: none may appear in an admin response or a log line.
const (
	adminReadToken   = "read-token-5f1e2d"
	adminAdminToken  = "admin-token-9c8b7a"
	adminBackendPass = "admin-backend-pw-314"
	adminClientPass  = "admin-client-pw-271"
	adminSecretValue = "literal-value-8675309" // a value in a client's running statement
)

func tokenHash(tok string) string { s := sha256.Sum256([]byte(tok)); return hex.EncodeToString(s[:]) }

// adminProxy is a proxy with the admin API on a free loopback port, and the bodies of every
// admin response it gave (for the secrets check).
type adminProxy struct {
	*proxy
	base string
	mu   sync.Mutex
	seen []string
}

var adminAddrRE = regexp.MustCompile(`msg="admin API listening" addr=(\S+)`)

// startAdminProxy runs a proxy on a MariaDB with databases shop_0 and shop_1 (orders sharded
// by user_id over s0 on backend b0 and s1) and aux_0 (database aux on backend b1, the same
// server under another name).
func startAdminProxy(t *testing.T, srv *mariadbtest.Server, hash string) *adminProxy {
	t.Helper()
	doc := fmt.Sprintf(`listen: 127.0.0.1:3307
users:
  - {name: app, password_hash: "%s", admin: true}
backends:
  - {name: b0, addr: "%s", user: adm, password_env: ADMIN_BACKEND_PW, pool: {max_open: 20}}
  - {name: b1, addr: "%s", user: adm, password_env: ADMIN_BACKEND_PW, pool: {max_open: 20}}
shards:
  - {name: s0, primary: b0, database: shop_0}
  - {name: s1, primary: b0, database: shop_1}
  - {name: a0, primary: b1, database: aux_0}
schemes:
  - {name: by_user, function: mod, shards: [s0, s1]}
databases:
  - name: shop
    default_shard: s0
    tables:
      - {name: orders, kind: sharded, key: user_id, scheme: by_user}
  - {name: aux, default_shard: a0}
admin:
  listen: 127.0.0.1:0
  tokens:
    - {name: viewer, role: read, sha256: %s}
    - {name: operator, role: admin, sha256: %s}
  open: [healthz]
`, hash, srv.Addr(), srv.Addr(), tokenHash(adminReadToken), tokenHash(adminAdminToken))
	path := filepath.Join(t.TempDir(), "admin.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	p := launchProxy(t, doc, []string{"ADMIN_BACKEND_PW=" + adminBackendPass}, "--config", path)
	var m []string
	eventually(t, 10*time.Second, "admin address logged", func() error {
		if m = adminAddrRE.FindStringSubmatch(p.log.String()); m == nil {
			return fmt.Errorf("no admin address in the log")
		}
		return nil
	})
	return &adminProxy{proxy: p, base: "http://" + m[1]}
}

// call makes an admin request and returns the status and body.
func (a *adminProxy) call(t testing.TB, method, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, a.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	a.seen = append(a.seen, string(body))
	a.mu.Unlock()
	return resp.StatusCode, string(body)
}

// getJSON GETs path with the read token, wants 200 and decodes the body into v.
func (a *adminProxy) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	code, body := a.call(t, "GET", path, adminReadToken)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

func setupAdminServer(t *testing.T) *mariadbtest.Server {
	t.Helper()
	srv := mariadbtest.Start(t)
	srv.Exec(t,
		"CREATE USER 'adm'@'%' IDENTIFIED BY '"+adminBackendPass+"'", "GRANT ALL PRIVILEGES ON *.* TO 'adm'@'%'",
		"CREATE DATABASE shop_0", "CREATE DATABASE shop_1", "CREATE DATABASE aux_0",
		"CREATE TABLE shop_0.orders (id INT PRIMARY KEY, user_id INT, note VARCHAR(40))",
		"CREATE TABLE shop_1.orders (id INT PRIMARY KEY, user_id INT, note VARCHAR(40))",
		"INSERT INTO shop_0.orders VALUES (1, 2, 'a'), (3, 4, 'b')",
		"INSERT INTO shop_1.orders VALUES (2, 1, 'c'), (4, 3, 'd')",
		"CREATE TABLE aux_0.t (id INT PRIMARY KEY)", "INSERT INTO aux_0.t VALUES (1)")
	return srv
}

func TestAdminAPI(t *testing.T) {
	srv := setupAdminServer(t)
	hash := hashPassword(t, "native", adminClientPass)

	t.Run("Metrics", func(t *testing.T) { testAdminMetrics(t, startAdminProxy(t, srv, hash)) })

	a := startAdminProxy(t, srv, hash)
	db := a.open(t, "app", adminClientPass, "shop")

	t.Run("Tokens", func(t *testing.T) {
		for _, c := range []struct {
			method, path, token string
			want                int
		}{
			{"GET", "/api/v1/status", "", 401},
			{"GET", "/api/v1/status", "not-a-token", 401},
			{"GET", "/api/v1/status", adminReadToken, 200},
			{"POST", "/api/v1/reload", adminReadToken, 403},
			{"POST", "/api/v1/reload", adminAdminToken, 200},
			{"GET", "/metrics", "", 401},
			{"GET", "/healthz", "", 200},
			{"GET", "/", "", 401},
			{"GET", "/", adminReadToken, 200},
		} {
			if code, body := a.call(t, c.method, c.path, c.token); code != c.want {
				t.Errorf("%s %s with token %q: %d, want %d: %s", c.method, c.path, c.token, code, c.want, body)
			}
		}
	})

	t.Run("Read", func(t *testing.T) {
		var st struct {
			Config     string                           `json:"config_source"`
			Version    string                           `json:"version"`
			LastReload struct{ Result, Trigger string } `json:"last_reload"`
		}
		a.getJSON(t, "/api/v1/status", &st)
		if !strings.HasPrefix(st.Config, "file:") || st.Version == "" || st.LastReload.Result != "unchanged" || st.LastReload.Trigger != "api" {
			t.Errorf("status = %+v", st)
		}
		var backends []struct {
			Name, State string
			Roles       []string
			Pool        *struct {
				MaxOpen int `json:"max_open"`
			}
		}
		a.getJSON(t, "/api/v1/backends", &backends)
		if len(backends) != 2 || backends[0].Name != "b0" || backends[0].Pool == nil || backends[0].Pool.MaxOpen != 20 ||
			strings.Join(backends[0].Roles, ",") != "primary of s0,primary of s1" || backends[1].State != "online" {
			t.Errorf("backends = %+v", backends)
		}
		var shards []struct{ Name, Primary, Database string }
		a.getJSON(t, "/api/v1/shards", &shards)
		if len(shards) != 3 || shards[0].Name != "a0" || shards[0].Primary != "b1" || shards[0].Database != "aux_0" || shards[2].Primary != "b0" {
			t.Errorf("shards = %+v", shards)
		}
		var plan struct {
			Plan []struct{ Step, Shard, Detail string }
		}
		a.getJSON(t, "/api/v1/plan?db=shop&sql="+url.QueryEscape("SELECT note FROM orders WHERE user_id = 3"), &plan)
		if len(plan.Plan) != 1 || plan.Plan[0].Step != "route" || plan.Plan[0].Shard != "s1" {
			t.Errorf("plan of a keyed select = %+v", plan)
		}
		a.getJSON(t, "/api/v1/plan?db=shop&sql="+url.QueryEscape("SELECT note FROM orders ORDER BY id"), &plan)
		if len(plan.Plan) < 3 || plan.Plan[0].Shard != "s0" || plan.Plan[1].Shard != "s1" || plan.Plan[2].Step != "merge" {
			t.Errorf("plan of a scatter select = %+v", plan)
		}
		if code, body := a.call(t, "GET", "/api/v1/plan?db=shop&sql=SELEKT", adminReadToken); code != 422 || !strings.Contains(body, "syntax") {
			t.Errorf("plan of bad SQL: %d %s", code, body)
		}
		var xa struct{ Pending []any }
		a.getJSON(t, "/api/v1/xa", &xa)
		if xa.Pending == nil || len(xa.Pending) != 0 {
			t.Errorf("xa = %+v", xa)
		}
		var rulesDoc map[string]any
		a.getJSON(t, "/api/v1/rules", &rulesDoc)
		if rulesDoc["Listen"] != "127.0.0.1:3307" {
			t.Errorf("rules = %v", rulesDoc)
		}
	})

	t.Run("SessionsAndKill", func(t *testing.T) {
		conn, err := db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var id uint32
		if err := conn.QueryRowContext(t.Context(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := conn.ExecContext(context.Background(), "SELECT SLEEP(30), '"+adminSecretValue+"'")
			done <- err
		}()
		var sessions []struct {
			ID      uint32
			User    string
			Command string
			Digest  string `json:"statement_digest"`
		}
		eventually(t, 10*time.Second, "the running statement listed", func() error {
			a.getJSON(t, "/api/v1/sessions", &sessions)
			for _, s := range sessions {
				if s.ID == id && strings.Contains(s.Digest, "sleep") {
					return nil
				}
			}
			return fmt.Errorf("sessions %+v", sessions)
		})
		for _, s := range sessions {
			if s.ID == id && (s.User != "app" || strings.Contains(s.Digest, adminSecretValue) || !strings.Contains(s.Digest, "?")) {
				t.Errorf("session %+v: want user app and a digest without the literal", s)
			}
		}
		if code, body := a.call(t, "POST", fmt.Sprintf("/api/v1/sessions/%d/kill", id), adminAdminToken); code != 200 {
			t.Fatalf("kill: %d %s", code, body)
		}
		select {
		case err := <-done:
			if err == nil {
				t.Error("the killed session's statement succeeded")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the killed session's statement still runs")
		}
		eventually(t, 5*time.Second, "the killed session gone", func() error {
			if code, body := a.call(t, "POST", fmt.Sprintf("/api/v1/sessions/%d/kill", id), adminAdminToken); code != 404 {
				return fmt.Errorf("killing it again: %d %s, want 404", code, body)
			}
			return nil
		})
	})

	t.Run("DrainBackend", func(t *testing.T) { testAdminDrain(t, a) })

	t.Run("StatusPage", func(t *testing.T) {
		done := make(chan error, 1)
		go func() {
			_, err := db.Exec("SELECT SLEEP(4), '" + adminSecretValue + "' FROM orders WHERE user_id = 1")
			done <- err
		}()
		var body string
		eventually(t, 10*time.Second, "the running statement on the page", func() error {
			var code int
			code, body = a.call(t, "GET", "/", adminReadToken)
			if code != 200 || !strings.Contains(body, "<table id=\"shards\">") || !strings.Contains(body, "aux_0") || !strings.Contains(body, "sleep") {
				return fmt.Errorf("status page: %d\n%s", code, body)
			}
			return nil
		})
		if strings.Contains(body, adminSecretValue) {
			t.Errorf("the status page shows a statement's literal")
		}
		var sessions []struct{ Time int64 }
		a.getJSON(t, "/api/v1/sessions", &sessions)
		if len(sessions) != 1 || sessions[0].Time > 10 {
			t.Errorf("sessions = %+v, want one running for a few seconds", sessions)
		}
		if shot := os.Getenv("SHARDPROXY_ADMIN_SCREENSHOT"); shot != "" {
			screenshot(t, a, shot)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})

	t.Run("NoSecrets", func(t *testing.T) {
		a.mu.Lock()
		seen := strings.Join(a.seen, "\n")
		a.mu.Unlock()
		for _, secret := range []string{adminBackendPass, adminClientPass, hash, adminReadToken, adminAdminToken, adminSecretValue} {
			if strings.Contains(seen, secret) {
				t.Errorf("an admin response contains the secret %q", secret)
			}
			if strings.Contains(a.log.String(), secret) {
				t.Errorf("the proxy's log contains the secret %q", secret)
			}
		}
	})
}

// testAdminDrain takes backend b1 offline while a client loop runs on b0's shards and a long
// statement runs on b1: the loop sees no error, the statement in flight finishes, new ones
// on b1 are refused with a clear error, /readyz reports the shard, and b1 comes back online.
func testAdminDrain(t *testing.T, a *adminProxy) {
	shop := a.open(t, "app", adminClientPass, "shop")
	aux := a.open(t, "app", adminClientPass, "aux")
	var stop sync.WaitGroup
	quit := make(chan struct{})
	var loopErrs []error
	var n int
	stop.Add(1)
	go func() {
		defer stop.Done()
		for {
			select {
			case <-quit:
				return
			default:
			}
			var note string
			if err := shop.QueryRow("SELECT note FROM orders WHERE user_id = 3").Scan(&note); err != nil || note != "d" {
				loopErrs = append(loopErrs, fmt.Errorf("%q %v", note, err))
			}
			n++
		}
	}()
	inFlight := make(chan error, 1)
	go func() {
		var one int
		inFlight <- aux.QueryRow("SELECT SLEEP(0.5) + 1 FROM t").Scan(&one)
	}()
	eventually(t, 5*time.Second, "statement on b1 running", func() error {
		var sessions []struct {
			Digest string `json:"statement_digest"`
		}
		a.getJSON(t, "/api/v1/sessions", &sessions)
		for _, s := range sessions {
			if strings.Contains(s.Digest, "sleep") {
				return nil
			}
		}
		return fmt.Errorf("not yet")
	})
	code, body := a.call(t, "POST", "/api/v1/backends/b1/offline", adminAdminToken)
	if code != 200 || !strings.Contains(body, `"open_connections": 0`) {
		t.Errorf("offline b1: %d %s", code, body)
	}
	if err := <-inFlight; err != nil {
		t.Errorf("the statement in flight on the drained backend failed: %v", err)
	}
	var one int
	err := aux.QueryRow("SELECT 1 FROM t").Scan(&one)
	if err == nil || !strings.Contains(err.Error(), "offline") {
		t.Errorf("a statement on the drained backend: %v, want an error saying it is offline", err)
	}
	if code, body := a.call(t, "GET", "/readyz", adminReadToken); code != 503 || !strings.Contains(body, "shard a0: primary b1 is fenced (offline") {
		t.Errorf("readyz with b1 offline: %d %s", code, body)
	}
	var backends []struct {
		Name, State string
		Pool        any
	}
	a.getJSON(t, "/api/v1/backends", &backends)
	if backends[1].State != "offline" {
		t.Errorf("b1 after the drain: %+v", backends[1])
	}
	if code, body := a.call(t, "POST", "/api/v1/backends/b1/online", adminAdminToken); code != 200 {
		t.Errorf("online b1: %d %s", code, body)
	}
	if err := aux.QueryRow("SELECT 1 FROM t").Scan(&one); err != nil {
		t.Errorf("b1 back online: %v", err)
	}
	eventually(t, 10*time.Second, "readyz with b1 online", func() error {
		if code, body := a.call(t, "GET", "/readyz", adminReadToken); code != 200 {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	close(quit)
	stop.Wait()
	if len(loopErrs) > 0 || n == 0 {
		t.Errorf("the client loop on b0 saw %d errors in %d queries, first %v", len(loopErrs), n, loopErrs)
	}
}

// testAdminMetrics runs a known workload on a fresh proxy and checks the scraped counters
// exactly, and that every metric the Grafana dashboard uses is exported.
func testAdminMetrics(t *testing.T, a *adminProxy) {
	db := a.open(t, "app", adminClientPass, "shop")
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	for i := range 7 {
		var note string
		if err := db.QueryRow("SELECT note FROM orders WHERE user_id = " + strconv.Itoa(i%4+1)).Scan(&note); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		mustCount(t, db, "SELECT COUNT(*) FROM orders", 4)
	}
	mustExec(t, db, "INSERT INTO orders (id, user_id, note) VALUES (10, 10, 'x'), (11, 11, 'y')", "DELETE FROM orders WHERE id IN (10, 11)")
	for range 2 {
		if _, err := db.Exec("SELEKT 1"); err == nil {
			t.Fatal("a syntax error succeeded")
		}
	}
	if _, err := db.Exec("SET @@session.max_execution_time = 0"); err != nil {
		t.Fatal(err)
	}
	code, body := a.call(t, "GET", "/metrics", adminReadToken)
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	want := map[string]float64{
		`shardproxy_statements_total{kind="select",route="single"}`:      7,
		`shardproxy_statements_total{kind="select",route="scatter"}`:     3,
		`shardproxy_statements_total{kind="insert",route="multi_write"}`: 1,
		`shardproxy_statements_total{kind="delete",route="multi_write"}`: 1,
		`shardproxy_statements_total{kind="other",route="local"}`:        2,
		`shardproxy_statements_total{kind="set",route="local"}`:          1,
		`shardproxy_statement_duration_seconds_count{kind="select"}`:     10,
		`shardproxy_errors_total{class="42",code="1064"}`:                2,
		`shardproxy_client_connections_total`:                            1,
		`shardproxy_client_connections`:                                  1,
		`shardproxy_client_connections_refused_total`:                    0,
		`shardproxy_config_reloads_total{result="applied"}`:              1,
		`shardproxy_config_reloads_total{result="rejected"}`:             0,
		`shardproxy_config_revision`:                                     0,
		`shardproxy_xa_transactions_total{outcome="committed"}`:          2,
		`shardproxy_pool_max_open_connections{backend="b0"}`:             20,
		`shardproxy_backend_offline{backend="b1"}`:                       0,
		`shardproxy_statement_timeouts_total{source="server"}`:           0,
		`shardproxy_kills_total{reason="timeout"}`:                       0,
	}
	got := parseMetrics(body)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for _, k := range []string{`go_goroutines`, `process_resident_memory_bytes`, `shardproxy_backend_query_duration_seconds_count{backend="b0"}`} {
		if _, ok := got[k]; !ok {
			t.Errorf("%s is not exported", k)
		}
	}
	checkDashboard(t, body)
}

// parseMetrics reads the text exposition format into "name{labels}" → value.
func parseMetrics(body string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

var dashboardMetricRE = regexp.MustCompile(`\b(?:shardproxy|go|process)_[a-z0-9_]+`)

// checkDashboard fails the test for every metric named in deploy/grafana/shardproxy.json
// that the scraped exposition does not have.
func checkDashboard(t *testing.T, exposition string) {
	t.Helper()
	data, err := os.ReadFile("../deploy/grafana/shardproxy.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct{ List []struct{ Query any } }
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	exported := map[string]bool{}
	for _, line := range strings.Split(exposition, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			exported[strings.Fields(name)[0]] = true
		}
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok {
			exprs = append(exprs, q)
		}
	}
	checked := 0
	for _, e := range exprs {
		for _, name := range dashboardMetricRE.FindAllString(e, -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && exported[b] {
					base = b
				}
			}
			// Replication lag has series only for replicas, which this suite's shards lack
			// (cmd/shardproxy's TestDashboardMetrics checks it against the registered metrics).
			if !exported[base] && base != "shardproxy_backend_replication_lag_seconds" {
				t.Errorf("the dashboard uses %s, which the proxy does not export (in %s)", name, e)
			}
			checked++
		}
	}
	if checked < 30 {
		t.Errorf("only %d metric references found in the dashboard", checked)
	}
}

func mustCount(t *testing.T, db *sql.DB, q string, want int) {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil || n != want {
		t.Fatalf("%s = %d, %v; want %d", q, n, err, want)
	}
}

// screenshot renders the status page in headless Chromium into path (a manual check:
// SHARDPROXY_ADMIN_SCREENSHOT=/tmp/status.png).
func screenshot(t *testing.T, a *adminProxy, path string) {
	t.Helper()
	bin := requireTool(t, "/usr/bin/chromium", "chromium")
	u := strings.Replace(a.base, "http://", "http://viewer:"+adminReadToken+"@", 1) + "/"
	cmd := exec.CommandContext(t.Context(), bin, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--window-size=1280,900", "--screenshot="+path, u)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	t.Logf("status page screenshot: %s", path)
}
