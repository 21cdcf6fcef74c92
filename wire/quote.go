package wire

import "strings"

// QuoteString returns s as a single-quoted SQL string literal, escaped so that it reads back
// as s under any sql_mode but NO_BACKSLASH_ESCAPES.
func QuoteString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`, "\n", `\n`, "\r", `\r`, "\x1a", `\Z`)
	return "'" + r.Replace(s) + "'"
}

// QuoteIdent returns name as a backquoted SQL identifier (a backquote in it doubled).
func QuoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}
