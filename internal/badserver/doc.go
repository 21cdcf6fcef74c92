// Package badserver is a test helper: a fake MySQL server that logs any client in (well
// enough for the proxy's pool) and answers statements normally, except those that ask for
// garbage: a query or prepared statement whose text contains "bad:NAME" gets the malformed
// answer NAME (see Scenarios) to COM_QUERY and COM_STMT_EXECUTE; "badprep:NAME" gets it to
// COM_STMT_PREPARE.
//
// It is not a stand-in for MariaDB: it exists to check that the proxy survives a backend
// that breaks the protocol. It imports wire, sqlerr and go-mysql's constants.
package badserver
