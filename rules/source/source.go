package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// Doc is one version of the configuration document as a source holds it.
type Doc struct {
	// Data is the YAML document (rules.Config's schema).
	Data []byte
	// Revision is etcd's modification revision of the document's key; 0 for a file.
	Revision int64
	// Digest is the hex SHA-256 of Data (its first 12 digits name a version in logs).
	Digest string
}

// NewDoc returns a Doc of data at revision rev, with its digest.
func NewDoc(data []byte, rev int64) Doc {
	sum := sha256.Sum256(data)
	return Doc{Data: data, Revision: rev, Digest: hex.EncodeToString(sum[:])}
}

// Source is where the configuration comes from. Implementations are safe for concurrent use.
type Source interface {
	// Name describes the source for logs and the admin API: "file:PATH" or "etcd:PREFIX".
	Name() string
	// Fetch returns the current document.
	Fetch(ctx context.Context) (Doc, error)
	// Watch calls changed (from Watch's goroutine, never concurrently) whenever the document
	// may have changed, until ctx is done; then it returns ctx's error. The caller fetches
	// after each call: a call with nothing new is harmless, a missed change is not.
	Watch(ctx context.Context, changed func()) error
}

// ErrNoConfig means the source holds no configuration document (an empty etcd prefix).
var ErrNoConfig = errors.New("source: no configuration document")
