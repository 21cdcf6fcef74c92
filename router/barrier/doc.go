// Package barrier is the privilege barrier (docs/architecture.md, invariant 7) as a pass of
// its own. The proxy's backend accounts are privileged; a client must not borrow their
// privileges, whatever path its SQL takes. The barrier decides, from the text or the parsed
// statement alone and the few session facts it is given (Facts), whether a client's SQL may
// reach a backend; its answer is nil or the *sqlerr.Error the client gets:
//
//   - Facts.Text: text a client sends, before it is parsed: MariaDB's executable comments
//     resolved as the backend will read them, text refused whose quoting the backend would
//     read otherwise than the parser (escape-unsafe character sets, ANSI_QUOTES,
//     NO_BACKSLASH_ESCAPES);
//   - Facts.Grammar: what parsing gave, refused while sql_mode has MariaDB read another
//     grammar (ORACLE);
//   - Statement: each parsed statement, nested ones included: administration of the server
//     (accounts, grants, server state, server-side files, replication), table options that
//     reach beyond the table's database, SET of global and privileged variables and of
//     escape-unsafe client character sets (SetVars);
//   - Unparsed: the answer to text the parser cannot read and no allowed shape takes;
//   - Schema, Table, Function: the system schemas, the information_schema tables about the
//     whole server and the functions reading its files, refused wherever a statement names
//     them (the router's analyzer, which walks every statement it plans, asks of each);
//   - SplitSetStatement: MariaDB's SET STATEMENT ... FOR taken apart, so that each part
//     passes the barrier.
//
// The router calls it on every path by which SQL reaches a backend (router/barrier.go lists
// them; TestBarrierEntryPaths pins each). It is pure: no I/O, no session state, no
// goroutines. It may import sqlerr, router/sqlscan and the TiDB parser; never router.
package barrier
