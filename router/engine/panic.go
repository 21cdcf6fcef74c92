package engine

import (
	"fmt"

	"github.com/shardproxy/shardproxy/sqlerr"
)

// Panicked is what a recovered panic becomes (a defect, or backend bytes that no check
// caught): the statement fails with an internal error and the connection involved is
// treated as lost (ErrBackendIO).
func Panicked(v any) error {
	return fmt.Errorf("%w: %w", ErrBackendIO, sqlerr.New(sqlerr.ErUnknownError,
		"Internal error in the proxy while handling the statement (%v); it may or may not have run", v))
}
