// Package infile reads the rows of a LOAD DATA file the way MariaDB's server does
// (sql_load.cc's READ_INFO: fields, enclosures, escapes, line prefixes and terminators), from
// a stream of chunks, so that the router can send each row to the shard its key names
// without ever holding the whole file.
//
// A row is returned as the bytes it took in the file, from where the previous row ended to
// the end of its line terminator: the file cut at row boundaries and sent in pieces to
// several servers, each loading its piece with the same options, gives every server exactly
// the rows (and the warnings) it would have seen in the whole file.
//
// Only separators made of bytes below 0x80 are read (ENCLOSED BY and ESCAPED BY one byte each), and
// only character sets where such a byte never occurs inside a multi-byte character (UTF-8,
// single-byte sets): for them MariaDB's multi-byte handling never changes where a field or a
// line ends. Callers check Format.Check first.
//
// The package imports only the standard library.
package infile
