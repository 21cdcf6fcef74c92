package wire

import (
	"strings"
	"testing"
)

func TestStmtCacheLRU(t *testing.T) {
	var sc stmtCache
	for i := range MaxStmts {
		if dropped := sc.put(strings.Repeat("x", i), Stmt{ID: uint32(i)}); len(dropped) != 0 {
			t.Fatalf("put %d dropped %v", i, dropped)
		}
	}
	sc.get("") // ID 0 becomes the most recently used; ID 1 the least
	if dropped := sc.put("new", Stmt{ID: 1000}); len(dropped) != 1 || dropped[0].ID != 1 {
		t.Fatalf("eviction dropped %v, want ID 1", dropped)
	}
	if dropped := sc.put("new", Stmt{ID: 1000, Params: 2}); len(dropped) != 0 {
		t.Fatalf("update with the same id dropped %v", dropped)
	}
	if dropped := sc.put("new", Stmt{ID: 1001}); len(dropped) != 1 || dropped[0].ID != 1000 {
		t.Fatalf("replacement dropped %v, want ID 1000", dropped)
	}
	sc.clear()
	if sc.lru.Len() != 0 || len(sc.m) != 0 {
		t.Fatal("clear left statements")
	}
}

func TestConnStateReset(t *testing.T) {
	var s ConnState
	s.SetStatus(StatusAutocommit | StatusInTrans)
	s.SetDB("shop")
	s.SetVars(map[string]string{"sql_mode": "'ANSI'"})
	s.PutStmt("k", Stmt{ID: 7})
	s.MarkDirty()
	if !s.InTransaction() || !s.Dirty() || s.StmtCount() != 1 {
		t.Fatalf("before the reset: in transaction %v, dirty %v, %d statements", s.InTransaction(), s.Dirty(), s.StmtCount())
	}
	s.Reset()
	if s.Dirty() || len(s.Vars()) != 0 || s.StmtCount() != 0 {
		t.Fatalf("after the reset: dirty %v, vars %v, %d statements", s.Dirty(), s.Vars(), s.StmtCount())
	}
	if _, ok := s.Stmt("k"); ok {
		t.Fatal("a statement survived the reset")
	}
	if s.DB() != "shop" || s.Status() != StatusAutocommit|StatusInTrans {
		t.Fatalf("the reset changed db %q or status %#x (MariaDB keeps the database; the reset's OK reports the status)", s.DB(), s.Status())
	}
	s.MarkBroken()
	s.Reset()
	if !s.Broken() {
		t.Fatal("a reset cleared the broken mark")
	}
}
