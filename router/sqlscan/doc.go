// Package sqlscan is the lexing the router does on SQL text it does not parse (a statement
// the parser rejects, a shape it reads wrong, the part of a MariaDB statement the parser does
// not know): enough to tell the top level of a statement from its string literals, quoted
// identifiers, comments and parentheses. It reads text as MariaDB does under the default
// sql_mode (backslash escapes in strings; double quotes around strings); callers that depend
// on other modes check them first.
//
// It is pure and imports the standard library only.
package sqlscan
