package main

import (
	"context"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/protocol"
	"github.com/shardproxy/shardproxy/router"
	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/topo"
)

var (
	_ engine.Backend           = (*topo.Topology)(nil)
	_ engine.PreferringBackend = (*topo.Topology)(nil)
	_ engine.Conn              = (*topo.Conn)(nil)
	_ protocol.Abandoner       = session{}
	_ protocol.Abandoner       = observedSession{}
)

// handler adapts the router to protocol.Handler.
type handler struct {
	r *router.Router
	m *statementMetrics // nil: no statement metrics
}

var _ protocol.Handler = handler{}

func (h handler) NewSession(ctx context.Context, info protocol.ConnInfo) (protocol.Session, error) {
	s, err := h.r.NewSession(ctx, router.SessionInfo{ConnID: info.ID, User: info.User, Collation: info.Collation,
		FoundRows:  info.Capabilities&mysql.CLIENT_FOUND_ROWS != 0,
		LocalFiles: info.Capabilities&mysql.CLIENT_LOCAL_FILES != 0,
		TLSVersion: info.TLSVersion, TLSCipher: info.TLSCipher})
	if err != nil {
		return nil, err
	}
	if h.m != nil {
		return observedSession{session: session{s}, m: h.m}, nil
	}
	return session{s}, nil
}

// session adapts router.Session to protocol.Session: the prepared-statement methods differ
// only in their statement type.
type session struct{ *router.Session }

func (s session) Prepare(ctx context.Context, sql string) (protocol.Prepared, error) {
	return s.Session.Prepare(ctx, sql)
}

func (s session) Execute(ctx context.Context, p protocol.Prepared, params []protocol.Param, _ bool, w protocol.ResultWriter) error {
	return s.Session.Execute(ctx, p.(*router.Stmt), params, w)
}

func (s session) CloseStmt(p protocol.Prepared) { s.Session.CloseStmt(p.(*router.Stmt)) }

// processes adapts the protocol server's connection list to router.Processes. srv is set
// once, after the server is made and before it serves.
type processes struct{ srv *protocol.Server }

var _ router.Processes = (*processes)(nil)

func (p *processes) List() []router.Process {
	ps := p.srv.Processes()
	out := make([]router.Process, len(ps))
	for i, x := range ps {
		out[i] = router.Process{ID: x.ID, User: x.User, Host: x.Host, DB: x.DB, Command: x.Command, Time: x.Time, State: x.State, Info: x.Info}
	}
	return out
}

func (p *processes) KillQuery(id uint32) bool      { return p.srv.KillQuery(id) }
func (p *processes) KillConnection(id uint32) bool { return p.srv.KillConnection(id) }

// users adapts the rules store to protocol.UserStore: each login reads the current snapshot.
type users struct{ store *rules.Store }

func (u users) LookupUser(name string) (protocol.Credential, bool) {
	usr, ok := u.store.Load().User(name)
	if !ok {
		return protocol.Credential{}, false
	}
	return protocol.Credential{Hash: usr.PasswordHash}, true
}
