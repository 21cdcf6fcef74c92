// Package sqlerr carries MySQL errors through the proxy with their identity intact.
//
// A backend's error (parsed from its ERR packet) and the proxy's own errors are both an
// *Error with an errno, a SQLSTATE and a message. Inner packages create or wrap them with %w;
// only the protocol edge encodes them into an ERR packet. sqlerr imports nothing of the
// proxy and may be imported by every package.
package sqlerr

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// MySQL error numbers the proxy produces itself.
const (
	ErDBAccessDenied       uint16 = 1044
	ErAccessDenied         uint16 = 1045
	ErNoDB                 uint16 = 1046
	ErHandshake            uint16 = 1043 // ER_HANDSHAKE_ERROR: "Bad handshake"
	ErUnknownCom           uint16 = 1047
	ErBadDB                uint16 = 1049
	ErParse                uint16 = 1064
	ErEmptyQuery           uint16 = 1065
	ErUnknownError         uint16 = 1105
	ErSpecificAccessDenied uint16 = 1227
	ErUpdateWithoutKey     uint16 = 1175 // ER_UPDATE_WITHOUT_KEY_IN_SAFE_MODE
	ErUnknownSystemVar     uint16 = 1193
	ErWrongValueForVar     uint16 = 1231
	ErNetPacketTooLarge    uint16 = 1153
	ErNotSupportedYet      uint16 = 1235
	ErUnknownStmtHandler   uint16 = 1243
	ErWrongArguments       uint16 = 1210
	ErConCount             uint16 = 1040
	ErServerShutdown       uint16 = 1053
	ErQueryInterrupted     uint16 = 1317
	ErQueryTimeout         uint16 = 3024
	ErNoSuchThread         uint16 = 1094
	ErKillDenied           uint16 = 1095
	ErConnectionKilled     uint16 = 1927 // MariaDB's "Connection was killed"
	ErLockWaitTimeout      uint16 = 1205
	ErNetReadInterrupted   uint16 = 1159
	ErNetReadError         uint16 = 1158 // ER_NET_READ_ERROR: "Got an error reading communication packets"
	ErMalformedPacket      uint16 = 1835
	ErUnsupportedPS        uint16 = 1295 // ER_UNSUPPORTED_PS
	// ErCantConnect: a backend cannot be reached (ER_CONNECT_TO_FOREIGN_DATA_SOURCE, what
	// MariaDB's own FEDERATED and Spider engines answer when a remote server is unreachable).
	// The statement did not run; the client connection stays usable.
	ErCantConnect uint16 = 1429
	// ErConnLost: a backend connection failed during a statement that changed nothing, or
	// whose loss the proxy reports by closing the client connection (see ErrLost)
	// (ER_QUERY_ON_FOREIGN_DATA_SOURCE, FEDERATED's and Spider's code for a remote failure).
	ErConnLost uint16 = 1430
)

// Client-range codes (CR_*, 2000-2999) belong to client libraries and never travel in an
// ERR packet: libmariadb reads one there as a malformed packet (2027).
const (
	MinClientCode uint16 = 2000
	MaxClientCode uint16 = 2999
)

// ErrFatal marks an error after which the client connection must be closed (the session's
// backend state is gone); the protocol writes the error, then closes.
var ErrFatal = errors.New("sqlerr: fatal for the connection")

// ErrLost marks "connection lost, outcome unknown" (a write or COMMIT whose backend
// connection failed before it answered, a transaction whose connection is gone): the
// protocol logs the error and closes the client connection without an ERR packet, so the
// client's driver reports its own 2013 (CR_SERVER_LOST), as when a server dies. It implies
// ErrFatal.
var ErrLost = errors.New("sqlerr: connection lost, outcome unknown")

// Lost wraps err as ErrLost (and ErrFatal).
func Lost(err error) error {
	if errors.Is(err, ErrLost) {
		return err
	}
	return fmt.Errorf("%w: %w: %w", ErrLost, ErrFatal, err)
}

// Causes a statement's context is cancelled with (context.Cause), besides its deadline. Each
// wraps context.Canceled, so a cancelled statement answers ER_QUERY_INTERRUPTED (1317) unless
// a layer maps the cause to something more specific.
var (
	// ErrClientGone: the client closed its connection during the statement.
	ErrClientGone = fmt.Errorf("sqlerr: client went away: %w", context.Canceled)
	// ErrKilledQuery: KILL QUERY from a session of the proxy.
	ErrKilledQuery = fmt.Errorf("sqlerr: killed by KILL QUERY: %w", context.Canceled)
	// ErrKilledConnection: KILL [CONNECTION] from a session of the proxy, or a shutdown.
	ErrKilledConnection = fmt.Errorf("sqlerr: connection killed: %w", context.Canceled)
)

// Error is a MySQL error: what an ERR packet carries.
type Error struct {
	Code    uint16
	State   string // five characters
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("ERROR %d (%s): %s", e.Code, e.State, e.Message)
}

// New returns an error with code, the SQLSTATE MySQL uses for that code (HY000 when it has
// none) and a formatted message.
func New(code uint16, format string, args ...any) *Error {
	state, ok := mysql.MySQLState[code]
	if !ok {
		state = "HY000"
	}
	if code == ErQueryInterrupted || code == ErConnectionKilled {
		state = "70100"
	}
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	return &Error{Code: code, State: state, Message: msg}
}

// NotSupported is ER_NOT_SUPPORTED_YET with a message saying what and why.
func NotSupported(format string, args ...any) *Error {
	return New(ErNotSupportedYet, "This version of shardproxy doesn't yet support '"+format+"'", args...)
}

// As returns the *Error inside err, if any.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}
