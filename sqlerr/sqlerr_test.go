package sqlerr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/shardproxy/shardproxy/sqlerr"
)

// Expected SQLSTATEs are MySQL's own, from the MySQL 8.0 server error reference
// (errno → SQLSTATE), not from the code under test.
func TestNewState(t *testing.T) {
	cases := []struct {
		code  uint16
		state string
	}{
		{sqlerr.ErConCount, "08004"},
		{sqlerr.ErDBAccessDenied, "42000"},
		{sqlerr.ErAccessDenied, "28000"},
		{sqlerr.ErNoDB, "3D000"},
		{sqlerr.ErUnknownCom, "08S01"},
		{sqlerr.ErBadDB, "42000"},
		{sqlerr.ErServerShutdown, "08S01"},
		{sqlerr.ErParse, "42000"},
		{sqlerr.ErEmptyQuery, "42000"},
		{1146, "42S02"}, // ER_NO_SUCH_TABLE
		{1062, "23000"}, // ER_DUP_ENTRY
		{sqlerr.ErUnknownError, "HY000"},
		{sqlerr.ErNetPacketTooLarge, "08S01"},
		{sqlerr.ErNetReadInterrupted, "08S01"},
		{sqlerr.ErLockWaitTimeout, "HY000"},
		{sqlerr.ErWrongArguments, "HY000"},
		{sqlerr.ErUnknownSystemVar, "HY000"},
		{sqlerr.ErWrongValueForVar, "42000"},
		{sqlerr.ErNotSupportedYet, "42000"},
		{sqlerr.ErUnknownStmtHandler, "HY000"},
		{sqlerr.ErQueryInterrupted, "70100"},
		{sqlerr.ErMalformedPacket, "HY000"},
		{sqlerr.ErCantConnect, "HY000"}, // 1429 ER_CONNECT_TO_FOREIGN_DATA_SOURCE
		{sqlerr.ErConnLost, "HY000"},    // 1430 ER_QUERY_ON_FOREIGN_DATA_SOURCE
		{1136, "21S01"},                 // ER_WRONG_VALUE_COUNT_ON_ROW (router: INSERT rows)
		{1295, "HY000"},                 // ER_UNSUPPORTED_PS (router: statements not preparable)
		{1461, "42000"},                 // ER_MAX_PREPARED_STMT_COUNT_REACHED (protocol)
		{65000, "HY000"},                // no such errno: the generic state
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.code), func(t *testing.T) {
			e := sqlerr.New(c.code, "msg")
			if e.Code != c.code || e.State != c.state || e.Message != "msg" {
				t.Errorf("New(%d) = {%d %q %q}, want {%d %q \"msg\"}", c.code, e.Code, e.State, e.Message, c.code, c.state)
			}
			if len(e.State) != 5 {
				t.Errorf("state %q is not five characters", e.State)
			}
		})
	}
}

func TestNewQueryTimeoutState(t *testing.T) {
	// MySQL 8.0: "Error number: 3024; Symbol: ER_QUERY_TIMEOUT; SQLSTATE: HY000", and the
	// mysql client prints "ERROR 3024 (HY000): Query execution was interrupted, maximum
	// statement execution time exceeded". (1317 ER_QUERY_INTERRUPTED is the one with 70100.)
	e := sqlerr.New(sqlerr.ErQueryTimeout, "x")
	if e.State != "HY000" {
		t.Errorf("sqlerr.New(3024) gives SQLSTATE %q, want HY000 (only 1317 ER_QUERY_INTERRUPTED is 70100)", e.State)
	}
}

func TestNewFormat(t *testing.T) {
	cases := []struct {
		name   string
		format string
		args   []any
		want   string
	}{
		{"no args keeps verbs", "100% sure %s", nil, "100% sure %s"},
		{"args are formatted", "Unknown database '%s'", []any{"shop"}, "Unknown database 'shop'"},
		{"numbers", "handler (%d)", []any{7}, "handler (7)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := sqlerr.New(sqlerr.ErUnknownError, c.format, c.args...).Message; got != c.want {
				t.Errorf("message = %q, want %q", got, c.want)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	e := sqlerr.New(sqlerr.ErAccessDenied, "Access denied for user '%s'", "bob")
	want := "ERROR 1045 (28000): Access denied for user 'bob'"
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestNotSupported(t *testing.T) {
	e := sqlerr.NotSupported("SET GLOBAL through %s", "the proxy")
	if e.Code != 1235 || e.State != "42000" {
		t.Errorf("code/state = %d/%s, want 1235/42000", e.Code, e.State)
	}
	want := "This version of shardproxy doesn't yet support 'SET GLOBAL through the proxy'"
	if e.Message != want {
		t.Errorf("message = %q, want %q", e.Message, want)
	}
}

func TestAs(t *testing.T) {
	base := sqlerr.New(sqlerr.ErBadDB, "Unknown database 'x'")
	cases := []struct {
		name string
		err  error
		want *sqlerr.Error
	}{
		{"bare", base, base},
		{"wrapped once", fmt.Errorf("router: %w", base), base},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", base)), base},
		{"with fatal", fmt.Errorf("%w: %w", sqlerr.ErrFatal, base), base},
		{"joined", errors.Join(errors.New("other"), base), base},
		{"not a MySQL error", errors.New("plain"), nil},
		{"formatted with %v loses it", fmt.Errorf("x: %v", base), nil},
		{"nil", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := sqlerr.As(c.err)
			if ok != (c.want != nil) || got != c.want {
				t.Errorf("As = %v, %v; want %v", got, ok, c.want)
			}
		})
	}
}

func TestFatalIsDetectable(t *testing.T) {
	err := fmt.Errorf("%w: %w", sqlerr.ErrFatal, sqlerr.New(sqlerr.ErConnLost, "lost"))
	if !errors.Is(err, sqlerr.ErrFatal) {
		t.Error("errors.Is(err, ErrFatal) = false")
	}
	if e, ok := sqlerr.As(err); !ok || e.Code != sqlerr.ErConnLost {
		t.Errorf("As = %v, %v; want the 1430 error", e, ok)
	}
}

// TestLost: ErrLost implies ErrFatal and keeps the error's identity; wrapping twice is a
// no-op.
func TestLost(t *testing.T) {
	err := sqlerr.Lost(sqlerr.New(sqlerr.ErConnLost, "lost"))
	if !errors.Is(err, sqlerr.ErrLost) || !errors.Is(err, sqlerr.ErrFatal) {
		t.Errorf("Lost(...) = %v: not ErrLost and ErrFatal", err)
	}
	if e, ok := sqlerr.As(err); !ok || e.Code != sqlerr.ErConnLost {
		t.Errorf("As = %v, %v; want the 1430 error", e, ok)
	}
	if again := sqlerr.Lost(err); again != err {
		t.Errorf("Lost(Lost(x)) wrapped again: %v", again)
	}
}

// TestNoClientCodes: the codes the proxy produces itself are server codes; a client-range
// code (2000-2999) in an ERR packet makes libmariadb report 2027 "malformed packet".
func TestNoClientCodes(t *testing.T) {
	for _, code := range []uint16{sqlerr.ErCantConnect, sqlerr.ErConnLost, sqlerr.ErConCount, sqlerr.ErConnectionKilled,
		sqlerr.ErQueryInterrupted, sqlerr.ErQueryTimeout, sqlerr.ErMalformedPacket, sqlerr.ErUnsupportedPS} {
		if code >= sqlerr.MinClientCode && code <= sqlerr.MaxClientCode {
			t.Errorf("code %d is in the client range", code)
		}
	}
}
