// Package router turns client statements into backend work: it parses each statement with
// the TiDB parser, plans where it goes from the current rules snapshot (pure: statement +
// snapshot → plan), and executes the plan on backend connections it gets from a Backend,
// relaying result packets to the client without decoding rows wherever no merge is needed.
//
// It also owns the session state that must follow a client across pooled backend
// connections: current database, session variables (replayed on each connection it uses),
// transactions (a connection is pinned while one is open; the transaction's bookkeeping and
// rules are router/txn's Txn, txn.go keeps the connections and answers the client), and
// state the proxy cannot replay (user variables, temporary tables, locks), which pins the
// connection for good.
//
// That state lives in types the Session owns, each with its own methods: sessionVars
// (vars.go: the variables replayed on every backend connection, the parser and restore
// flags of the session's sql_mode, the deadline its SET chose), interrupts (deadline.go: a
// statement's timeout, the kill of what a backend still runs for a statement cut short),
// sessionDiag and insertIDs (diag.go, insertid.go: the previous statement's warnings,
// ROW_COUNT(), FOUND_ROWS(), LAST_INSERT_ID()), heldConns (panics.go: the backend
// connections held, each released once, panic recovery), readState (readsplit.go: the
// read/write split and read retry of the statement running, as router/planner decided them,
// the GTIDs of the last writes),
// tableLocks (lock.go: LOCK TABLES on shards, taken and given up in one order), processes
// (process.go: SHOW PROCESSLIST and KILL as the user sees them) and sqlStmts
// (prepare_sql.go: SQL-level prepared statements); SessionInfo, the client connection's
// facts, answers CLIENT_FOUND_ROWS (foundrows.go) and the client's Ssl_* status
// (sslstatus.go), sessionVars the barrier's facts. Session's own methods are the facade:
// dispatch of a statement to those, the planner and the backend.
//
// Each statement runs under its deadline (deadline.go: hint, session variable, configured
// defaults); a statement whose context ends is killed on its backends and drained, and SHOW
// PROCESSLIST and KILL act on the client connections of the Processes interface (process.go).
//
// Writes spanning shards (split multi-row INSERTs, broadcast writes, UPDATE/DELETE without
// a single-slot key; split.go) commit atomically: router/txn's Coordinator runs the
// protocol (participants in prepared XA branches, the coordinator's local transaction with
// its decision row as the commit point) over branches xa.go runs and answers; its
// Recoverer resolves branches a crashed proxy left prepared. LOAD DATA LOCAL
// INFILE into a table on several shards is such a write (loadsplit.go): each shard loads its
// part of the client's file, split by shard key as MariaDB reads it (router/infile).
//
// Uncorrelated subqueries whose sharded tables are not pinned to the statement's shard (IN,
// EXISTS, scalar; the SELECT of an INSERT ... SELECT) run first through the proxy and are
// bound into the statement as literals of their values (subquery_bind.go,
// subquery_scalar.go, subquery_insert.go); a prepared one binds them at each EXECUTE
// (subquery_bind.go; described at PREPARE by router/planner).
//
// Introspection sees logical names (router/introspect): database and table-per-slot table
// names are translated both ways in statements reading information_schema and in SHOW, and
// information_schema is read through derived tables holding only the user's databases.
//
// Planning is router/planner's: the session hands it a planner.Planner (planner.go), a
// read-only copy of what planning reads of the session, and gets a primitive of router/plan
// (one shard; scatter and merge; a multi-shard write and its commit protocol; DDL fan-out;
// a local answer; passthrough: the client's text unchanged to one shard), which describes
// itself for EXPLAIN SHARDS and the golden tests; the session executes it by a dispatch on
// its type (execplan.go). What the session answers before planning (USE, SET, KILL, the
// SHOWs it answers, table locks, EXPLAIN, LOAD DATA LOCAL, SQL-level prepared statements,
// transaction control) is dispatched by family (dispatch.go). What else the session asks of
// its Planner is decided there too: the read/write split of a statement and whether a read
// may be retried, the shard of user variables, the session values a bound route fills in,
// the table a LOAD DATA LOCAL loads on every shard, what an EXPLAIN asks each shard, the
// MariaDB-only statements the parser cannot read, the statements nested in PREPARE ... FROM
// and SET STATEMENT ... FOR, and stored programs the parser cannot read (taken apart,
// checked, and placed on their shards; stored_programs.go and stored_sharded.go run them).
// MariaDB's RETURNING clause, which the parser does not know, is cut off, the statement
// planned without it and the clause put back (router/planner's returning.go; the session's
// returning.go runs it).
//
// A prepared statement is planned once (bound.go; its bound route is router/planner's):
// when its shard depends on a ? in the shard key (of the statement, or of a subquery pinned
// to its slot), EXECUTE resolves the slot from the bound values and fills in the route's
// bind variables (physical table and database names, the session values it embeds) without
// parsing again. A write its values send to several shards is split on the statement's tree
// with its prepare-time analysis; one whose shards its values do not change keeps its
// branches and hands them the values (router/planner's WriteRoute and MultiRoute). After a
// reload the statement is planned once more (replan). A SELECT its values send to several
// shards keeps, from its first such execution, each shard's statement cut at its parameters
// and the merge plan (router/planner's scatter_prepared.go): EXECUTE writes the literals in
// (LIMIT ? and session values included) and prunes the shards from the bound values, again
// without parsing (over tables per slot, a template per set of slots the values need); one
// that fits no template binds its values into the text and plans once.
//
// The privilege barrier is a pass of its own (router/barrier): every path by which SQL
// reaches a backend calls it (barrier.go lists them, TestBarrierEntryPaths pins each). Text
// the parser does not read is taken apart with router/sqlscan.
//
// Backends are reached through router/engine, which defines the Backend and Conn seam and
// speaks the MySQL client protocol (relay, column definitions, binary rows, Watch).
//
// It may import router/barrier, router/engine, router/infile, router/introspect, router/plan,
// router/planner, router/sqlscan, router/txn, merge, rules, sqlerr, wire and the TiDB parser; never
// protocol, topo or pool. Only cmd/shardproxy imports it.
package router
