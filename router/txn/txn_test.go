package txn

import (
	"slices"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// TestSavepointStack: the session's savepoint stack follows MariaDB's rules.
func TestSavepointStack(t *testing.T) {
	cases := []struct {
		name string
		ops  []string // "push x", "rollback x", "release x"
		want string   // names, oldest first; "1305" when the last op names no savepoint
	}{
		{"push", []string{"push a", "push b"}, "a b"},
		{"redefine moves to the top", []string{"push a", "push b", "push A"}, "b A"},
		{"rollback keeps the savepoint", []string{"push a", "push b", "push c", "rollback b"}, "a b"},
		{"release drops it and later ones", []string{"push a", "push b", "push c", "release b"}, "a"},
		{"names ignore case", []string{"push Sp", "rollback sP"}, "Sp"},
		{"unknown rollback", []string{"push a", "rollback z"}, "1305"},
		{"released is gone", []string{"push a", "push b", "release a", "rollback b"}, "1305"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var sps []savepoint
			got := ""
			for _, op := range c.ops {
				verb, name, _ := strings.Cut(op, " ")
				if verb == "push" {
					sps = pushSavepoint(sps, name, nil)
					continue
				}
				i := findSavepoint(sps, name)
				switch {
				case i < 0:
					got = "1305"
				case verb == "release":
					sps = sps[:i]
				default:
					sps = sps[:i+1]
				}
			}
			if got == "" {
				var names []string
				for _, sp := range sps {
					names = append(names, sp.name)
				}
				got = strings.Join(names, " ")
			}
			if got != c.want {
				t.Errorf("%v: got %q, want %q", c.ops, got, c.want)
			}
		})
	}
}

// TestNeedsJoin: a connection joins the transaction when one is open elsewhere, or when
// autocommit=0 savepoints wait for the first connection.
func TestNeedsJoin(t *testing.T) {
	cases := []struct {
		status     uint16
		open       bool
		savepoints int
		want       bool
	}{
		{wire.StatusAutocommit, false, 0, false},
		{wire.StatusAutocommit, true, 0, true},
		{wire.StatusAutocommit | wire.StatusInTrans, true, 2, false}, // already in
		{0, false, 0, false},                                         // autocommit=0 alone holds nothing
		{0, false, 1, true},                                          // autocommit=0 SAVEPOINT before any statement
		{wire.StatusInTrans, false, 1, false},
	}
	for _, c := range cases {
		if got := needsJoin(c.status, c.open, c.savepoints); got != c.want {
			t.Errorf("needsJoin(%#x, open %v, %d savepoints) = %v, want %v", c.status, c.open, c.savepoints, got, c.want)
		}
	}
}

func TestJoinStatements(t *testing.T) {
	cases := []struct {
		begin string
		sps   []string
		want  []string
	}{
		{"", nil, []string{"BEGIN"}},
		{"START TRANSACTION READ ONLY", nil, []string{"START TRANSACTION READ ONLY"}},
		{"BEGIN", []string{"a", "we`ird"}, []string{"BEGIN", "SAVEPOINT `a`", "SAVEPOINT `we``ird`"}},
	}
	for _, c := range cases {
		var sps []savepoint
		for _, n := range c.sps {
			sps = append(sps, savepoint{name: n})
		}
		if got := joinStatements(c.begin, sps); !slices.Equal(got, c.want) {
			t.Errorf("joinStatements(%q, %v) = %q, want %q", c.begin, c.sps, got, c.want)
		}
	}
}

// TestOneWriter: the one-writing-shard rule over a transaction's statements. Ops: "write
// s" (a write on s starts; "refused" when the rule refuses it), "ok s" / "fail s" (the
// statement on s succeeded or failed), "savepoint a", "rollback a", "release a", "chain"
// (COMMIT AND CHAIN), "begin".
func TestOneWriter(t *testing.T) {
	cases := []struct {
		name  string
		inTxn bool
		ops   []string
		want  string // the writers after the ops, sorted; "refused" when the last write was
	}{
		{"outside a transaction nothing is checked", false, []string{"write s0", "ok s0", "write s1", "ok s1"}, ""},
		{"first write makes the writer", true, []string{"write s0", "ok s0"}, "s0"},
		{"same shard again", true, []string{"write s0", "ok s0", "write s0", "ok s0"}, "s0"},
		{"second shard refused", true, []string{"write s0", "ok s0", "write s1"}, "refused"},
		{"a failed first write is not the writer", true, []string{"write s0", "fail s0", "write s1", "ok s1"}, "s1"},
		{"a failed later write keeps the writer", true, []string{"write s0", "ok s0", "write s0", "fail s0"}, "s0"},
		{"rollback to a savepoint before the write forgets it", true, []string{"savepoint a", "write s0", "ok s0", "rollback a", "write s1", "ok s1"}, "s1"},
		{"rollback to a savepoint after the write keeps it", true, []string{"write s0", "ok s0", "savepoint a", "rollback a", "write s1"}, "refused"},
		{"release keeps the writes", true, []string{"savepoint a", "write s0", "ok s0", "release a", "write s1"}, "refused"},
		{"AND CHAIN forgets the writer", true, []string{"write s0", "ok s0", "chain", "write s1", "ok s1"}, "s1"},
		{"BEGIN forgets the writer", true, []string{"write s0", "ok s0", "begin", "write s1", "ok s1"}, "s1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tx Txn
			got := ""
			for _, op := range c.ops {
				verb, arg, _ := strings.Cut(op, " ")
				switch verb {
				case "write":
					if err := tx.Write(arg, c.inTxn); err != nil {
						if e, ok := sqlerr.As(err); !ok || e.Code != sqlerr.ErNotSupportedYet {
							t.Fatalf("%s: error %v, want 1235", op, err)
						}
						got = "refused"
					}
				case "ok", "fail":
					tx.Settled(arg, verb == "fail")
				case "savepoint":
					tx.Savepoint(arg)
				case "rollback", "release":
					if err := tx.ToSavepoint(arg, verb == "release"); err != nil {
						t.Fatalf("%s: %v", op, err)
					}
				case "chain":
					tx.DropSavepoints()
					tx.ForgetWrites()
				case "begin":
					tx.Begin("BEGIN")
				}
			}
			if got == "" {
				got = strings.Join(tx.Writers(), " ")
			}
			if got != c.want {
				t.Errorf("%v: got %q, want %q", c.ops, got, c.want)
			}
		})
	}
}

// TestRefusalNamesTheShards: the refusal says which shard the transaction wrote.
func TestRefusalNamesTheShards(t *testing.T) {
	var tx Txn
	if err := tx.Write("s1", true); err != nil {
		t.Fatal(err)
	}
	tx.Settled("s1", false)
	err := tx.Write("s0", true)
	want := "a transaction writing to shard s0 after shard s1 (multi-shard transactions need XA); the transaction was rolled back"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("refusal %v, want %q", err, want)
	}
	if !tx.Wrote("s1") || tx.Wrote("s0") {
		t.Errorf("writers after the refusal %v, want s1 only", tx.Writers())
	}
}

// TestCommitOrder: the writing shard commits last; the others by name.
func TestCommitOrder(t *testing.T) {
	cases := []struct {
		writer string
		names  []string
		want   []string
	}{
		{"", []string{"s2", "s0", "s1"}, []string{"s0", "s1", "s2"}},
		{"s0", []string{"s2", "s0", "s1"}, []string{"s1", "s2", "s0"}},
		{"s1", []string{"s1"}, []string{"s1"}},
	}
	for _, c := range cases {
		var tx Txn
		if c.writer != "" {
			_ = tx.Write(c.writer, true)
		}
		if got := tx.CommitOrder(c.names); !slices.Equal(got, c.want) {
			t.Errorf("writer %q: CommitOrder(%v) = %v, want %v", c.writer, c.names, got, c.want)
		}
	}
}

// TestEnded: a transaction over forgets its writers and BEGIN text; savepoints taken under
// autocommit=0 before any connection opened the transaction stay.
func TestEnded(t *testing.T) {
	for _, autocommit := range []bool{true, false} {
		var tx Txn
		tx.Begin("START TRANSACTION READ ONLY")
		_ = tx.Write("s0", true)
		tx.Savepoint("a")
		tx.Ended(autocommit)
		if tx.BeginText() != "" || len(tx.Writers()) != 0 {
			t.Errorf("autocommit %v: after Ended begin %q, writers %v", autocommit, tx.BeginText(), tx.Writers())
		}
		if got, want := len(tx.Savepoints()), map[bool]int{true: 0, false: 1}[autocommit]; got != want {
			t.Errorf("autocommit %v: %d savepoints after Ended, want %d", autocommit, got, want)
		}
	}
	var tx Txn
	tx.Begin("BEGIN")
	_ = tx.Write("s0", true)
	tx.Savepoint("a")
	tx.Reset()
	if tx.BeginText() != "" || len(tx.Writers()) != 0 || tx.Savepoints() != nil {
		t.Errorf("after Reset: %+v", tx)
	}
	if err := tx.CheckSavepoint("a"); err == nil {
		t.Error("a savepoint survived Reset")
	}
}
