package admin

import (
	"bytes"
	"html/template"
	"net/http"
	"slices"
	"time"
)

// pageData is what the status page shows.
type pageData struct {
	Status   Status
	Ready    bool
	Why      string
	Shards   []Shard
	Backends []Backend
	Sessions []Session
	Reloads  []Reload
	Events   []Event
	Now      time.Time
}

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return time.Since(t).Truncate(time.Second).String() + " ago"
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="10">
<title>shardproxy status</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .3em}
h2{font-size:1.1em;margin:1.4em 0 .4em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em}
th,td{padding:.25em .7em;text-align:left;border-bottom:1px solid #eee}
th{background:#f5f5f5}
.ok{color:#176c2a;font-weight:600}.bad{color:#b00020;font-weight:600}
code{font-size:.9em}
.meta{color:#555}
</style>
</head>
<body>
<h1>shardproxy {{.Status.Version}}</h1>
<p class="meta">up {{.Status.Uptime}} · configuration {{.Status.Config}} revision {{.Status.Revision}} ·
{{if .Ready}}<span class="ok" id="ready">ready</span>{{else}}<span class="bad" id="ready">not ready: {{.Why}}</span>{{end}}
· last reload: {{.Status.LastReload.Result}} ({{.Status.LastReload.Trigger}}, {{ago .Status.LastReload.Time}})</p>

<h2>Shards</h2>
<table id="shards">
<tr><th>shard</th><th>logical databases</th><th>physical database</th><th>primary</th><th>replicas</th><th>last failover</th></tr>
{{range .Shards}}<tr><td>{{.Name}}</td><td>{{range $i, $d := .Databases}}{{if $i}}, {{end}}{{$d}}{{end}}</td><td>{{.Database}}</td><td>{{if .Primary}}{{.Primary}}{{else}}<span class="bad">none</span>{{end}}</td><td>{{range $i, $r := .Replicas}}{{if $i}}, {{end}}{{$r}}{{else}}-{{end}}</td><td>{{or .Failover "-"}}</td></tr>
{{end}}</table>

<h2>Backends and pools</h2>
<table id="backends">
<tr><th>backend</th><th>address</th><th>roles</th><th>state</th><th>health</th><th>lag</th><th>open</th><th>idle</th><th>in use</th><th>waiting</th><th>waits</th><th>wait time</th></tr>
{{range .Backends}}<tr><td>{{.Name}}</td><td>{{.Addr}}</td><td>{{range $i, $r := .Roles}}{{if $i}}, {{end}}{{$r}}{{end}}</td>
<td>{{if eq .State "online"}}<span class="ok">online</span>{{else}}<span class="bad">{{.State}}</span>{{end}}</td>
<td>{{if eq .Health "up"}}<span class="ok">up</span>{{else if eq .Health "unknown"}}not probed{{else}}<span class="bad">{{.Health}}</span> {{.Reason}}{{end}}</td><td>{{with .LagSeconds}}{{printf "%.1f" .}} s{{else}}-{{end}}</td>
{{with .Pool}}<td>{{.Open}}/{{.MaxOpen}}</td><td>{{.Idle}}</td><td>{{.InUse}}</td><td>{{.Waiting}}</td><td>{{.WaitCount}}</td><td>{{printf "%.3f" .WaitSeconds}} s</td>{{else}}<td colspan="6">no pool</td>{{end}}</tr>
{{end}}</table>

<h2>Client sessions ({{len .Sessions}})</h2>
<table id="sessions">
<tr><th>id</th><th>user</th><th>host</th><th>db</th><th>command</th><th>time</th><th>statement</th></tr>
{{range .Sessions}}<tr><td>{{.ID}}</td><td>{{.User}}</td><td>{{.Host}}</td><td>{{.DB}}</td><td>{{.Command}}</td><td>{{.Seconds}} s</td><td><code>{{.Digest}}</code></td></tr>
{{end}}</table>

<h2>Recent reloads</h2>
<table id="reloads">
<tr><th>when</th><th>trigger</th><th>result</th><th>revision</th><th>detail</th></tr>
{{range .Reloads}}<tr><td>{{ago .Time}}</td><td>{{.Trigger}}</td><td>{{if or (eq .Result "applied") (eq .Result "unchanged")}}<span class="ok">{{.Result}}</span>{{else}}<span class="bad">{{.Result}}</span>{{end}}</td><td>{{.Revision}}</td><td>{{.Error}}{{range .RestartRequired}} restart needed for {{.}}{{end}}</td></tr>
{{end}}</table>

<h2>Recent admin actions</h2>
<table id="events">
<tr><th>when</th><th>token</th><th>action</th><th>result</th></tr>
{{range .Events}}<tr><td>{{ago .Time}}</td><td>{{.Token}}</td><td>{{.Action}}</td><td>{{.Result}}</td></tr>
{{else}}<tr><td colspan="4">none</td></tr>
{{end}}</table>
<p class="meta">JSON: <a href="/api/v1/status">status</a> · <a href="/api/v1/backends">backends</a> · <a href="/api/v1/shards">shards</a> ·
<a href="/api/v1/sessions">sessions</a> · <a href="/api/v1/rules">rules</a> · <a href="/api/v1/xa">xa</a> · <a href="/metrics">metrics</a></p>
</body>
</html>
`))

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	d := pageData{Status: s.status(), Now: time.Now()}
	d.Ready, d.Why = s.o.Proxy.Ready(r.Context())
	if s.o.Shards != nil {
		d.Shards = s.o.Shards()
	}
	if s.o.Backends != nil {
		d.Backends = s.o.Backends.Backends()
	}
	if s.o.Sessions != nil {
		d.Sessions = s.o.Sessions.Sessions()
	}
	d.Reloads = s.o.Proxy.Reloads()
	slices.Reverse(d.Reloads)
	d.Events = s.Events()
	slices.Reverse(d.Events)
	var buf bytes.Buffer
	if err := page.Execute(&buf, d); err != nil {
		writeError(w, http.StatusInternalServerError, "rendering the status page: %v", err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}
