// Package rules is the configuration model: the YAML schema (users, backends, shards,
// logical databases), its validation, and the immutable Snapshot the rest of the proxy reads,
// published through a Store with an atomic swap so a reload never disturbs a statement in
// flight and an invalid config never replaces a valid one.
//
// It imports only the standard library and yaml (and, for the etcd source, etcd's client).
package rules
