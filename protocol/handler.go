package protocol

import (
	"context"
	"net"

	"github.com/shardproxy/shardproxy/wire"
)

// Handler creates the SQL side of each client connection. It is implemented outside this
// package (the router, through an adapter in cmd/shardproxy) and is called concurrently.
type Handler interface {
	// NewSession is called once per authenticated connection. The returned Session is used
	// by that connection's goroutine only and closed when the connection ends.
	NewSession(ctx context.Context, info ConnInfo) (Session, error)
}

// ConnInfo describes an authenticated client connection.
type ConnInfo struct {
	ID           uint32 // proxy connection id, as CONNECTION_ID() shows it
	User         string
	RemoteAddr   net.Addr
	Capabilities uint32 // agreed capability flags
	Collation    uint8  // collation id the client asked for in the handshake
	Attributes   map[string]string
	TLS          bool
	TLSVersion   string // the TLS session's protocol ("TLSv1.3"), "" without TLS
	TLSCipher    string // its cipher suite by OpenSSL's name ("TLS_AES_128_GCM_SHA256"), "" without TLS
}

// Session executes a client's commands. Every method gets the statement's context, which is
// cancelled when the client goes away or the proxy shuts down. Errors are returned, never
// written: the protocol edge encodes them (a *sqlerr.Error keeps its code and SQLSTATE).
type Session interface {
	// Query runs the text of one COM_QUERY. With multi-statements enabled the text may hold
	// several statements; each result but the last carries SERVER_MORE_RESULTS_EXISTS.
	Query(ctx context.Context, sql string, multi bool, w ResultWriter) error
	// UseDB switches the default database (COM_INIT_DB and the handshake's database).
	UseDB(ctx context.Context, db string) error
	// FieldList answers COM_FIELD_LIST with column definitions followed by EOF.
	FieldList(ctx context.Context, table, wildcard string, w ResultWriter) error
	// Prepare prepares a statement and describes its parameters and result columns.
	Prepare(ctx context.Context, sql string) (Prepared, error)
	// Execute runs a prepared statement; the result is written in the binary protocol.
	Execute(ctx context.Context, stmt Prepared, params []Param, cursor bool, w ResultWriter) error
	// CloseStmt releases a prepared statement (COM_STMT_CLOSE); it never fails.
	CloseStmt(stmt Prepared)
	// Reset returns the session to the state of a fresh login (COM_RESET_CONNECTION):
	// variables, transaction and prepared statements.
	Reset(ctx context.Context) error
	// Status returns the server status flags (autocommit, in transaction) for OK packets
	// that the protocol writes itself.
	Status() uint16
	// Close releases everything the session holds; a transaction in progress is rolled back.
	Close()
}

// Abandoner is a Session that can give up what it holds after its connection's goroutine
// panicked in one of its methods: its state is unknown, so it drops its backend resources
// as unusable (rather than returning them for reuse). Close follows.
type Abandoner interface {
	Abandon()
}

// Prepared is a statement prepared by a Session.
type Prepared interface {
	// NumParams is the number of ? placeholders.
	NumParams() int
	// ParamDefs and ColumnDefs are column-definition packet payloads (ParamDefs may be
	// placeholders); len(ParamDefs) == NumParams().
	ParamDefs() [][]byte
	ColumnDefs() [][]byte
}

// Param is one bound parameter of COM_STMT_EXECUTE (see wire.Param).
type Param = wire.Param

// ResultWriter receives a command's response packets; sequence numbers are the writer's
// business (see wire.PacketWriter).
type ResultWriter = wire.PacketWriter
