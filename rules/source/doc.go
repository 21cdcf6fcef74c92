// Package source fetches the proxy's configuration document and says when it may have
// changed: File reads a YAML file and watches for SIGHUP; Etcd reads one key under a prefix
// and watches it, surviving etcd restarts, leader changes and compaction. Both return the
// same YAML schema (rules.Config); decoding, validation and building are the caller's (the
// reload loop in cmd/shardproxy), so a source never judges a document.
//
// LastKnownGood keeps a copy of the last document that was applied, on local disk, so a
// proxy can start while etcd is unreachable.
//
// It imports the standard library and etcd's client/v3 only.
package source
