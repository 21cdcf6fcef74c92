package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Switcher performs planned switchovers of a shard's primary.
type Switcher interface {
	// Switchover makes replica to (any fit replica when "") the shard's primary without
	// failing a client statement. An error wrapping ErrSwitchoverRefused means nothing
	// changed (unknown shard or replica, connections busy); others that a step failed.
	Switchover(ctx context.Context, shard, to string) (SwitchoverResult, error)
}

// ErrSwitchoverRefused marks a switchover refused before anything changed (a Switcher wraps
// it; the API answers 409, or 404 for an unknown shard, which it reports with ErrNotFound).
var ErrSwitchoverRefused = errors.New("switchover refused")

// ErrNotFound marks an unknown name in a request.
var ErrNotFound = errors.New("not found")

// SwitchoverResult is the answer of POST /api/v1/shards/{name}/switchover.
type SwitchoverResult struct {
	Shard string `json:"shard"`
	Old   string `json:"old_primary"`
	New   string `json:"new_primary"`
	// PausedMS is how long new statements for the shard were held.
	PausedMS float64 `json:"paused_ms"`
	// Position is the GTID position the new primary applied before it took writes.
	Position string `json:"gtid_position"`
}

func (s *Server) switchover(w http.ResponseWriter, r *http.Request) {
	if s.o.Switcher == nil {
		writeError(w, http.StatusNotImplemented, "switchover is not available")
		return
	}
	name, to := r.PathValue("name"), r.URL.Query().Get("to")
	res, err := s.o.Switcher.Switchover(r.Context(), name, to)
	action := "switchover " + name
	if to != "" {
		action += " to " + to
	}
	if err != nil {
		s.event(r, action, err.Error())
		code := http.StatusBadGateway
		switch {
		case errors.Is(err, ErrNotFound):
			code = http.StatusNotFound
		case errors.Is(err, ErrSwitchoverRefused):
			code = http.StatusConflict
		}
		writeError(w, code, "%v", err)
		return
	}
	s.event(r, action, fmt.Sprintf("%s → %s, paused %.1f ms", res.Old, res.New, res.PausedMS))
	writeJSON(w, http.StatusOK, res)
}
