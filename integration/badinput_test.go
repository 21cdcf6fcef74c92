package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// testBadInput sends what no driver sends: garbage, truncated and malformed packets, before
// and after the login. The proxy must answer with an error or close that connection, never
// hang or crash, and go on serving the others.
func testBadInput(t *testing.T, e *env) {
	m := dbMap{Logical: "bad", Physical: "bad_phys"}
	cfg := e.config(t, m)
	cfg.Server["handshake_timeout"] = "2s"
	p := startProxy(t, cfg)
	bystander, err := p.open(t, appUser, appPass, m.Logical).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer bystander.Close()
	mustExec(t, bystander, "CREATE TABLE b (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO b VALUES (1, 'x')")

	t.Run("BeforeLogin", func(t *testing.T) { badHandshakes(t, p) })
	t.Run("AfterLogin", func(t *testing.T) { badCommands(t, p, m.Logical) })
	t.Run("RandomPackets", func(t *testing.T) { randomPackets(t, p, m.Logical) })

	if v := queryString(t, bystander, "SELECT v FROM b WHERE id = 1"); v != "x" {
		t.Errorf("a connection open all along: %q", v)
	}
	if err := p.open(t, appUser, appPass, m.Logical).Ping(); err != nil {
		t.Errorf("a new connection after the bad input: %v", err)
	}
	if p.exited() {
		t.Fatalf("shardproxy exited: %v", p.err)
	}
}

// packet frames payload with sequence number seq.
func packet(seq byte, payload []byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

// handshakeResponse builds a HandshakeResponse41 payload.
func handshakeResponse(caps uint32, user string, auth []byte, plugin string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, caps)
	b = binary.LittleEndian.AppendUint32(b, 16<<20)
	b = append(b, 45)
	b = append(b, make([]byte, 23)...)
	b = append(append(b, user...), 0)
	b = append(append(b, byte(len(auth))), auth...)
	return append(append(b, plugin...), 0)
}

// drain reads packets until the peer closes (closed true) or timeout passes.
func drain(c *rawConn, timeout time.Duration) (pkts [][]byte, closed bool) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	for {
		p, err := c.readPacket()
		if err != nil {
			var ne net.Error
			return pkts, !(errors.As(err, &ne) && ne.Timeout())
		}
		pkts = append(pkts, p)
	}
}

func errCodeOf(pkts [][]byte) uint16 {
	for _, p := range pkts {
		if len(p) > 0 && p[0] == 0xff {
			return parseErrPacket(p).Code
		}
	}
	return 0
}

func badHandshakes(t *testing.T, p *proxy) {
	garbage := randomBytes(64, 1)
	valid := func(caps uint32) []byte {
		return handshakeResponse(caps, appUser, make([]byte, 20), "mysql_native_password")
	}
	for _, tc := range []struct {
		name     string
		greeting bool   // read the greeting before sending
		send     []byte // raw bytes, framing included
		wantErr  uint16 // an ERR packet with this code before the close; 0: just the close
	}{
		{"GarbageFirst", false, garbage, 0},
		{"HTTPRequest", false, []byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), 0},
		{"TLSClientHelloWithoutSSLRequest", true, []byte{0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03}, 0},
		{"Silent", true, nil, 0}, // closed by handshake_timeout
		{"TruncatedPacket", true, append([]byte{100, 0, 0, 1}, make([]byte, 10)...), 0},
		{"HugeLengthThenNothing", true, []byte{0xff, 0xff, 0xff, 1, 0, 0}, 0},
		{"EmptyResponse", true, packet(1, nil), 1835},
		{"ShortResponse", true, packet(1, []byte{1, 2, 3, 4, 5}), 1835},
		{"UserWithoutNUL", true, packet(1, append(binary.LittleEndian.AppendUint32(make([]byte, 0, 40), rawCaps), append(make([]byte, 28), "app"...)...)), 1835},
		{"AuthLengthBeyondPacket", true, packet(1, append(bytes.Clone(valid(rawCaps)[:32+4]), 200, 1, 2)), 1835},
		{"WithoutProtocol41", true, packet(1, valid(capSecureConnection|capPluginAuth)), 1235},
		{"SSLRequestToPlainProxy", true, packet(1, bytes.Clone(valid(rawCaps | capSSL)[:32])), 1235},
		{"WrongSequence", true, packet(7, valid(rawCaps)), 0},
		{"WrongPasswordBytes", true, packet(1, valid(rawCaps)), 1045},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, p.Addr)
			if tc.greeting {
				if err := c.readGreeting(); err != nil {
					t.Fatal(err)
				}
			}
			if tc.send != nil {
				if _, err := c.nc.Write(tc.send); err != nil {
					t.Fatal(err)
				}
			}
			pkts, closed := drain(c, 10*time.Second)
			if !closed {
				t.Errorf("the proxy neither closed the connection nor finished the login within 10s")
			}
			if tc.wantErr != 0 && errCodeOf(pkts) != tc.wantErr {
				t.Errorf("packets % x, want an ERR %d before the close", pkts, tc.wantErr)
			}
		})
	}
}

func badCommands(t *testing.T, p *proxy, db string) {
	stmtExec := func(id uint32, rest ...byte) []byte {
		return append(binary.LittleEndian.AppendUint32([]byte{comStmtExecute}, id), rest...)
	}
	le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	for _, tc := range []struct {
		name    string
		payload func(stmt uint32) []byte // the command packet; stmt is a "SELECT ?, ?" prepared before
		wantErr uint16                   // 0: any answer, or none, will do
	}{
		{"EmptyPacket", func(uint32) []byte { return nil }, 1835},
		{"ExecuteTooShort", func(uint32) []byte { return []byte{comStmtExecute, 1, 0} }, 1835},
		{"ExecuteUnknownStatement", func(uint32) []byte { return stmtExec(9999, 0, 1, 0, 0, 0) }, 1243},
		{"ExecuteNoNullBitmap", func(id uint32) []byte { return stmtExec(id, 0, 1, 0, 0, 0) }, 1835},
		{"ExecuteTruncatedTypes", func(id uint32) []byte { return stmtExec(id, 0, 1, 0, 0, 0, 0, 1, typeLongLong) }, 1835},
		{"ExecuteFirstWithoutTypes", func(id uint32) []byte {
			return stmtExec(id, 0, 1, 0, 0, 0, 0, 0, 1, 2)
		}, 1210},
		{"ExecuteLenencBeyondPacket", func(id uint32) []byte {
			return stmtExec(id, 0, 1, 0, 0, 0, 0, 1, typeVarStr, 0, typeVarStr, 0, 0xfc, 0xff, 0xff, 'a', 'b')
		}, 1835},
		{"ExecuteDatetimeBeyondPacket", func(id uint32) []byte {
			return stmtExec(id, 0, 1, 0, 0, 0, 0, 1, 0x0c, 0, 0x0c, 0, 11, 0xe8, 0x07)
		}, 1835},
		{"ExecuteMissingValue", func(id uint32) []byte {
			return stmtExec(id, 0, 1, 0, 0, 0, 0, 1, typeLongLong, 0, typeLongLong, 0, 1, 0, 0, 0, 0, 0, 0, 0)
		}, 1835},
		{"ExecuteUnknownType", func(id uint32) []byte {
			return stmtExec(id, 0, 1, 0, 0, 0, 0, 1, 0x77, 0, 0x77, 0, 1, 'x', 1, 'y')
		}, 0},
		{"ExecuteHugeIterationCount", func(id uint32) []byte {
			return stmtExec(id, 0, 0xff, 0xff, 0xff, 0xff, 0, 1, typeTiny, 0, typeTiny, 0, 1, 2)
		}, 0},
		{"LongDataParamOutOfRange", func(id uint32) []byte {
			return append(append([]byte{comStmtSendLong}, le32(id)...), 7, 0, 'x')
		}, 0},
		{"LongDataUnknownStatement", func(uint32) []byte { return append([]byte{comStmtSendLong}, le32(4242)...) }, 0},
		{"LongDataTooShort", func(uint32) []byte { return []byte{comStmtSendLong, 1} }, 0},
		{"CloseUnknownStatement", func(uint32) []byte { return append([]byte{comStmtClose}, le32(4242)...) }, 0},
		{"CloseTooShort", func(uint32) []byte { return []byte{comStmtClose} }, 0},
		{"ResetUnknownStatement", func(uint32) []byte { return append([]byte{comStmtReset}, le32(4242)...) }, 1243},
		{"InitDBGarbage", func(uint32) []byte { return []byte{comInitDB, 0xff, 0x00, 'd'} }, 1049},
		{"QueryInvalidUTF8", func(uint32) []byte { return []byte("\x03SELECT '\xff\xfe\x00\xc3'") }, 0},
		{"SetOptionTooShort", func(uint32) []byte { return []byte{0x1b, 0} }, 1047},
		{"FieldListWithoutNUL", func(uint32) []byte { return []byte("\x04b") }, 0},
		{"PrepareEmpty", func(uint32) []byte { return []byte{comStmtPrepare} }, 1065},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := connectRaw(t, p.Addr, appUser, appPass, db)
			stmt, _, err := c.prepare("SELECT ?, ?")
			if err != nil {
				t.Fatal(err)
			}
			c.seq = 0
			if err := c.writePacket(tc.payload(stmt)); err != nil {
				t.Fatal(err)
			}
			_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if tc.wantErr != 0 {
				_, err := c.readResults()
				if se := (*serverError)(nil); !errors.As(err, &se) || se.Code != tc.wantErr {
					t.Errorf("got %v, want error %d", err, tc.wantErr)
				}
				if err := c.ping(); err != nil {
					t.Errorf("the connection does not answer COM_PING after the error: %v", err)
				}
			} else {
				// Whatever the answer (or none), a COM_PING after it must be answered.
				if err := c.command(comPing, nil); err != nil {
					t.Fatal(err)
				}
				if err := awaitPingOK(c, 10*time.Second); err != nil {
					t.Errorf("after the bad command: %v", err)
				}
			}
			// The statement still works with proper arguments.
			vals := appendLenencString(appendLenencString(nil, []byte("a")), []byte("b"))
			if err := c.command(comStmtExecute, execPayload(stmt, []byte{0}, []byte{typeVarStr, 0, typeVarStr, 0}, vals)); err != nil {
				t.Fatal(err)
			}
			if r, err := c.readResult(); err != nil || len(r.Rows) != 1 {
				t.Errorf("a proper execute after the bad command: %+v, %v", r, err)
			}
		})
	}

	t.Run("WrongSequenceAfterLogin", func(t *testing.T) {
		c := connectRaw(t, p.Addr, appUser, appPass, db)
		if _, err := c.nc.Write(packet(3, []byte("\x03SELECT 1"))); err != nil {
			t.Fatal(err)
		}
		pkts, closed := drain(c, 10*time.Second)
		if !closed {
			t.Errorf("no close after a packet out of sequence; got % x", pkts)
		}
	})
}

// randomPackets sends random commands after a login, each on a connection of its own; every
// connection must then answer COM_PING or be closed, within seconds.
func randomPackets(t *testing.T, p *proxy, db string) {
	r := rand.New(rand.NewPCG(20261124, 7))
	cmds := []byte{comQuery, comInitDB, 0x04, comStmtPrepare, comStmtExecute, comStmtExecute, comStmtExecute,
		comStmtSendLong, comStmtClose, comStmtReset, 0x1b, comResetConnection, 0x11, 0x12, 0x1c}
	for i := range 150 {
		c := connectRaw(t, p.Addr, appUser, appPass, db)
		stmt, _, err := c.prepare("SELECT ?, ?")
		if err != nil {
			t.Fatal(err)
		}
		cmd := cmds[r.IntN(len(cmds))]
		if r.IntN(10) == 0 {
			cmd = byte(r.IntN(256))
		}
		body := randomBytes(r.IntN(48), r.Uint64())
		if cmd >= comStmtExecute && cmd <= comStmtReset && len(body) >= 4 {
			binary.LittleEndian.PutUint32(body, stmt)
		}
		c.seq = 0
		if err := c.writePacket(append([]byte{cmd}, body...)); err != nil {
			t.Fatal(err)
		}
		if err := c.command(comPing, nil); err != nil {
			continue // closed already
		}
		if err := awaitPingOK(c, 10*time.Second); err != nil {
			t.Errorf("packet %d (command %#x, % x): %v", i, cmd, body, err)
		}
		_ = c.nc.Close()
	}
}

// awaitPingOK reads until the OK of a COM_PING (or the close of the connection).
func awaitPingOK(c *rawConn, timeout time.Duration) error {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	for {
		p, err := c.readPacket()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("neither an answer to COM_PING nor a close within %v", timeout)
			}
			return nil // closed: acceptable
		}
		if len(p) == 7 && p[0] == 0 && p[1] == 0 && p[2] == 0 {
			return nil
		}
	}
}
