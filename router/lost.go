package router

import (
	"errors"

	"github.com/shardproxy/shardproxy/router/engine"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// lostWrite turns the failure of a backend connection during a write into "outcome
// unknown": the write may or may not have run, which the client learns as from a server
// that died, by its connection closing (sqlerr.Lost; drivers report 2013). A read's
// failure stays an ERR packet (1430): nothing changed, the connection goes on.
func lostWrite(err error) error {
	if err != nil && errors.Is(err, engine.ErrBackendIO) {
		return sqlerr.Lost(err)
	}
	return err
}
