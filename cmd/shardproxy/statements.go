package main

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardproxy/shardproxy/protocol"
	"github.com/shardproxy/shardproxy/router"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// Statement kinds, the kind label of the statement metrics: the statement's first keyword,
// folded into a fixed set (never text from the client beyond that).
var statementKinds = map[string]string{
	"select": "select", "with": "select", "insert": "insert", "replace": "replace", "update": "update",
	"delete": "delete", "create": "ddl", "alter": "ddl", "drop": "ddl", "truncate": "ddl", "rename": "ddl",
	"set": "set", "show": "show", "use": "use", "begin": "begin", "start": "begin", "commit": "commit",
	"rollback": "rollback", "savepoint": "savepoint", "release": "savepoint", "explain": "explain",
	"describe": "explain", "desc": "explain", "call": "call", "kill": "kill", "xa": "xa",
	"prepare": "prepare", "execute": "execute", "deallocate": "prepare", "do": "select", "load": "load",
}

// statementKind returns the kind of sql from its first keyword (comments skipped).
func statementKind(sql string) string {
	s := sql
	for {
		s = strings.TrimLeft(s, " \t\r\n(")
		switch {
		case strings.HasPrefix(s, "/*"):
			end := strings.Index(s[2:], "*/")
			if end < 0 {
				return "other"
			}
			s = s[end+4:]
			continue
		case strings.HasPrefix(s, "--"), strings.HasPrefix(s, "#"):
			nl := strings.IndexByte(s, '\n')
			if nl < 0 {
				return "other"
			}
			s = s[nl+1:]
			continue
		}
		break
	}
	end := strings.IndexFunc(s, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') })
	if end < 0 {
		end = len(s)
	}
	if k, ok := statementKinds[strings.ToLower(s[:end])]; ok {
		return k
	}
	return "other"
}

// statementMetrics counts client commands by kind and route, times them, and counts errors.
type statementMetrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

func newStatementMetrics(reg prometheus.Registerer) *statementMetrics {
	m := &statementMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardproxy_statements_total",
			Help: "Client statements (COM_QUERY and COM_STMT_EXECUTE), by kind (first keyword) and route (local, single, scatter, multi_write, ddl).",
		}, []string{"kind", "route"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shardproxy_statement_duration_seconds",
			Help:    "Time from receiving a client statement to its last result packet, by kind.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardproxy_errors_total",
			Help: "Statements answered with an error, by SQLSTATE class (first two characters; io: connection-level) and MySQL error code.",
		}, []string{"class", "code"}),
	}
	reg.MustRegister(m.total, m.duration, m.errors)
	return m
}

func (m *statementMetrics) observe(kind, route string, start time.Time, err error) {
	m.total.WithLabelValues(kind, route).Inc()
	m.duration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	if err == nil {
		return
	}
	class, code := errorClass(err)
	m.errors.WithLabelValues(class, code).Inc()
}

// errorClass labels an error: the SQLSTATE class and code of a MySQL error, or io/0.
func errorClass(err error) (string, string) {
	e, ok := sqlerr.As(err)
	if !ok {
		if errors.Is(err, context.Canceled) {
			return "70", "1317"
		}
		return "io", "0"
	}
	class := "other"
	if len(e.State) == 5 && isClassChar(e.State[0]) && isClassChar(e.State[1]) {
		class = e.State[:2]
	}
	return class, strconv.Itoa(int(e.Code))
}

func isClassChar(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' }

// observedSession is the protocol session with statement metrics around Query and Execute.
type observedSession struct {
	session
	m *statementMetrics
}

// observedStmt remembers the kind of a prepared statement.
type observedStmt struct {
	*router.Stmt
	kind string
}

func (s observedSession) Query(ctx context.Context, sql string, multi bool, w protocol.ResultWriter) error {
	start := time.Now()
	err := s.session.Session.Query(ctx, sql, multi, w)
	s.m.observe(statementKind(sql), s.session.Route(), start, err)
	return err
}

func (s observedSession) Prepare(ctx context.Context, sql string) (protocol.Prepared, error) {
	st, err := s.session.Session.Prepare(ctx, sql)
	if err != nil {
		return nil, err
	}
	return observedStmt{Stmt: st, kind: statementKind(sql)}, nil
}

func (s observedSession) Execute(ctx context.Context, p protocol.Prepared, params []protocol.Param, _ bool, w protocol.ResultWriter) error {
	st := p.(observedStmt)
	start := time.Now()
	err := s.session.Session.Execute(ctx, st.Stmt, params, w)
	s.m.observe(st.kind, s.session.Route(), start, err)
	return err
}

func (s observedSession) CloseStmt(p protocol.Prepared) {
	s.session.Session.CloseStmt(p.(observedStmt).Stmt)
}
