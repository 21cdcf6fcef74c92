package plan

import (
	"fmt"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/wire"
)

// MultiWrite is a write spanning shards (a multi-row INSERT over several slots, a write to a
// broadcast table, an UPDATE or DELETE of several slots, a LOAD DATA LOCAL into a sharded
// table): a branch per shard, each a list of statements run in order there, committed
// together by the protocol Commit names. The first branch is the coordinator.
type MultiWrite struct {
	Attrs
	Branches []Branch
	// Copies: the branches write identical copies (a broadcast table), so the client is
	// told of one, not of the sum.
	Copies bool
}

// Branch is the part of a MultiWrite that runs on one shard.
type Branch struct {
	Shard *rules.Shard
	Stmts []WriteStmt
}

// WriteStmt is one statement of a Branch.
type WriteStmt struct {
	SQL string
	// Params are the statement's own parameters (a prepared statement's values of the
	// placeholders it kept, in order); nil for a statement sent as text.
	Params   []wire.Param
	ParamIdx []int // which of the client's parameters Params are
	// FirstRow is the index, in the client's VALUES list, of the statement's first row; 0
	// for a broadcast copy.
	FirstRow int
	// File is the shard's part of the client's file, for a LOAD DATA LOCAL (package
	// router's loadsplit.go); nil otherwise.
	File FilePart
}

// FilePart is a shard's part of a client's LOAD DATA LOCAL file, read by the backend as the
// file its statement loads.
type FilePart interface {
	ReadFilePacket() ([]byte, error)
}

// Commit is a MultiWrite's commit protocol.
type Commit int

const (
	// CommitLocal: every statement is on one shard, in one local transaction.
	CommitLocal Commit = iota
	// CommitXA: the branches other than the coordinator are XA branches, prepared first;
	// the coordinator's local COMMIT with the decision row is the commit point; then XA
	// COMMIT on the others (package router's xa.go).
	CommitXA
)

// Commit is the protocol that makes the write atomic: XA over several shards.
func (w *MultiWrite) Commit() Commit {
	if len(w.Branches) > 1 {
		return CommitXA
	}
	return CommitLocal
}

// Add appends st to shard's branch, which it opens when shard has none yet.
func (w *MultiWrite) Add(shard *rules.Shard, st WriteStmt) {
	for i := range w.Branches {
		if w.Branches[i].Shard == shard {
			w.Branches[i].Stmts = append(w.Branches[i].Stmts, st)
			return
		}
	}
	w.Branches = append(w.Branches, Branch{Shard: shard, Stmts: []WriteStmt{st}})
}

// Describe is a write step per statement, then the commit on the coordinator.
func (w *MultiWrite) Describe() Description {
	d := Description{Primitive: "multi-write", Flags: w.flags()}
	if w.Copies {
		d.Flags = append(d.Flags, "copies")
	}
	for _, b := range w.Branches {
		for _, st := range b.Stmts {
			step := Step{Step: "write", Shard: b.Shard.Name, SQL: st.SQL}
			if len(st.ParamIdx) > 0 {
				step.Params = st.ParamIdx
			}
			d.Steps = append(d.Steps, step)
		}
	}
	if len(w.Branches) == 0 {
		return d
	}
	commit := Step{Step: "commit", Shard: w.Branches[0].Shard.Name, Detail: "one local transaction"}
	if w.Commit() == CommitXA {
		commit.Detail = fmt.Sprintf("atomic over %d shards: XA PREPARE on the others, then this coordinator's COMMIT with the decision row, then XA COMMIT", len(w.Branches))
	}
	d.Steps = append(d.Steps, commit)
	return d
}
