// Package introspect translates what clients learn about their schema between the logical
// names they use and the physical ones on the shards: database names and the slot tables of
// table-per-slot tables (name_NNNN), both ways.
//
// It owns information_schema and SHOW translation: which shard a statement about
// information_schema asks (Shard), the names a shard's rows must be read under (Names,
// NamesOn), string literals and parameters that name logical databases (RewriteLiterals,
// Names.PhysicalParams), derived tables that keep the user's own databases only (Filter,
// Unqualify, AllowedSchemas), and the PacketWriters that give rows and column definitions
// their logical names on the way to the client (Rows, LogicalColumns).
//
// It is pure: no I/O and no session state; callers pass the rules snapshot and the user. It
// may import rules, wire, sqlerr, router/engine (column definitions) and the TiDB parser;
// never router.
package introspect
