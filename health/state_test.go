package health

import (
	"errors"
	"testing"
	"time"
)

func TestMachine(t *testing.T) {
	fail := errors.New("dial tcp: connection refused")
	for _, tc := range []struct {
		name      string
		downAfter int
		probes    []error
		want      []State // state after each probe
		changed   []bool
	}{
		{"UpStaysUp", 3, []error{nil, nil}, []State{Up, Up}, []bool{true, false}},
		{"OneFailureIsSuspect", 3, []error{nil, fail, nil}, []State{Up, Suspect, Up}, []bool{true, true, true}},
		{"DownAfterThree", 3, []error{nil, fail, fail, fail, fail}, []State{Up, Suspect, Suspect, Down, Down}, []bool{true, true, false, true, false}},
		{"DownAfterOne", 1, []error{fail}, []State{Down}, []bool{true}},
		{"FirstProbeFails", 2, []error{fail, fail}, []State{Suspect, Down}, []bool{true, true}},
		{"RecoveryResetsCount", 3, []error{fail, fail, nil, fail, fail}, []State{Suspect, Suspect, Up, Suspect, Suspect}, []bool{true, false, true, true, false}},
		{"DownToUp", 2, []error{fail, fail, nil}, []State{Suspect, Down, Up}, []bool{true, true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m machine
			now := time.Unix(100, 0)
			for i, err := range tc.probes {
				now = now.Add(time.Second)
				changed := m.observe(now, err, tc.downAfter)
				if m.state != tc.want[i] || changed != tc.changed[i] {
					t.Fatalf("probe %d: state %v changed %v; want %v %v", i, m.state, changed, tc.want[i], tc.changed[i])
				}
				if changed && !m.since.Equal(now) {
					t.Errorf("probe %d: since %v, want %v", i, m.since, now)
				}
				if m.state != Up && m.reason != fail.Error() {
					t.Errorf("probe %d: reason %q", i, m.reason)
				}
			}
		})
	}
}
