package rules

import (
	"testing"
	"time"
)

func TestSplitFor(t *testing.T) {
	on := func(d time.Duration) ReadSplit { return ReadSplit{Enabled: true, MaxLag: d} }
	cases := []struct {
		name string
		u    *User
		d    *Database
		want ReadSplit
	}{
		{"neither", &User{}, &Database{}, ReadSplit{}},
		{"nil both", nil, nil, ReadSplit{}},
		{"user only", &User{Split: on(200 * time.Millisecond)}, &Database{}, on(200 * time.Millisecond)},
		{"database only", &User{}, &Database{Split: on(time.Second)}, on(time.Second)},
		{"user's bound wins", &User{Split: on(100 * time.Millisecond)}, &Database{Split: on(time.Second)}, on(100 * time.Millisecond)},
		{"no database yet", &User{}, nil, ReadSplit{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := SplitFor(c.u, c.d); got != c.want {
				t.Errorf("SplitFor = %+v, want %+v", got, c.want)
			}
		})
	}
	if s, err := newReadSplit(true, 0); err != nil || s != on(DefaultMaxReplicaLag) {
		t.Errorf("default bound: %+v, %v", s, err)
	}
}
