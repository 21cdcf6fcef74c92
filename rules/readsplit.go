package rules

import (
	"errors"
	"time"
)

// DefaultMaxReplicaLag is the replica lag bound of a read/write split that names none.
const DefaultMaxReplicaLag = time.Second

// ReadSplit is the read/write split setting of a user or a logical database: when Enabled,
// reads outside transactions may go to a replica whose lag is under MaxLag (else to the
// primary). The zero value is "off".
type ReadSplit struct {
	Enabled bool
	MaxLag  time.Duration
}

func newReadSplit(on bool, lag Duration) (ReadSplit, error) {
	if lag < 0 {
		return ReadSplit{}, errors.New("max_replica_lag must not be negative")
	}
	if lag != 0 && !on {
		return ReadSplit{}, errors.New("max_replica_lag is set but read_write_split is not")
	}
	if !on {
		return ReadSplit{}, nil
	}
	if lag == 0 {
		lag = Duration(DefaultMaxReplicaLag)
	}
	return ReadSplit{Enabled: true, MaxLag: time.Duration(lag)}, nil
}

// SplitFor is the read/write split a session of user u in database d follows: on when
// either enables it; the lag bound is the user's when the user enables it, else the
// database's. Either may be nil.
func SplitFor(u *User, d *Database) ReadSplit {
	if u != nil && u.Split.Enabled {
		return u.Split
	}
	if d != nil {
		return d.Split
	}
	return ReadSplit{}
}
