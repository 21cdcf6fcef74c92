package barrier

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shardproxy/shardproxy/router/sqlscan"
	"github.com/shardproxy/shardproxy/sqlerr"
)

// Facts are the session facts the barrier reads: the session's variables as the session
// holds them (SQL literals as read back from the backend, quotes included; "" for the
// baseline). The zero value is a fresh session's. Facts are a value, read only.
type Facts struct {
	CharsetClient string // character_set_client
	SQLMode       string // sql_mode
}

// announcedVersion is the MariaDB version the proxy resolves executable comments as
// (MYSQL_VERSION_ID of the 10.11.0 it announces).
const announcedVersion = 101100

// Text checks that the backend reads sql as the proxy's parser does, and returns it
// with MariaDB's executable comments resolved, as a MariaDB 10.11.0 would read them:
// /*M! text */ and /*M!###### text */ with a version up to 10.11.0 become text, those of
// later versions become a space. The TiDB parser reads them as plain comments, so without
// this the backend would run what the barrier never saw; with it, what is parsed is what is
// sent. Quoting is judged with backslash escapes and single- and double-quoted strings;
// under sql_modes that read quotes otherwise (ANSI_QUOTES, NO_BACKSLASH_ESCAPES), and
// whenever "/*M!" is left (in a string, say), the text is refused.
//
// Under ANSI_QUOTES a backslash ends a double-quoted identifier for MariaDB ("a\" is the
// name a\) but escapes the quote for the parser, which would then read the rest of the
// statement as part of the name: text holding \" is refused there.
//
// Under an escape-unsafe client character set (see EscapeUnsafe) that a SET from an
// expression gave the session, only ASCII text passes: no byte of it can start a
// multi-byte character, so the backend reads it as the parser does.
func (f Facts) Text(sql string) (string, error) {
	if EscapeUnsafe(f.CharsetClient) && !isASCII(sql) {
		return "", sqlerr.NotSupported("text beyond ASCII under the client character set %s: in it a backslash can end a multi-byte character, so the backend would read string literals otherwise than the proxy", f.CharsetClient)
	}
	mode := strings.ToUpper(f.SQLMode)
	if strings.Contains(mode, "ANSI") && strings.Contains(sql, `\"`) {
		return "", sqlerr.NotSupported(`a backslash before a double quote under sql_mode ANSI_QUOTES: MariaDB ends the quoted name there, the proxy's parser does not`)
	}
	if !strings.Contains(sql, "/*") || !hasMariaDBComment(sql) {
		return sql, nil
	}
	if strings.Contains(mode, "ANSI") || strings.Contains(mode, "NO_BACKSLASH_ESCAPES") {
		return "", errComments()
	}
	out := resolveComments(sql)
	if hasMariaDBComment(out) {
		return "", errComments()
	}
	return out, nil
}

func errComments() error {
	return sqlerr.NotSupported("MariaDB executable comments (/*M! ... */) here: the proxy could not tell what they run")
}

// resolveComments replaces each /*M! ... */ comment outside quotes by what MariaDB 10.11.0
// runs of it (see Text). An unterminated comment is left as it is.
func resolveComments(sql string) string {
	var b strings.Builder
	b.Grow(len(sql)) // a resolved comment is shorter than the comment
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			j := sqlscan.SkipQuoted(sql, i)
			b.WriteString(sql[i:j])
			i = j
			continue
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				b.WriteString(sql[i:])
				i = len(sql)
				continue
			}
			body := sql[i+2 : i+2+end]
			next := i + 2 + end + 2
			if len(body) < 2 || (body[0] != 'M' && body[0] != 'm') || body[1] != '!' {
				b.WriteString(sql[i:next])
				i = next
				continue
			}
			text, version := body[2:], 0
			for k := 0; k < 6 && len(text) > 0 && text[0] >= '0' && text[0] <= '9'; k++ {
				version = version*10 + int(text[0]-'0')
				text = text[1:]
			}
			b.WriteByte(' ')
			if version <= announcedVersion {
				b.WriteString(text)
				b.WriteByte(' ')
			}
			i = next
			continue
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func hasMariaDBComment(sql string) bool {
	return strings.Contains(sql, "/*M!") || strings.Contains(sql, "/*m!")
}

// Grammar refuses statements while the session's sql_mode has MariaDB read another
// grammar than the proxy's parser (ORACLE: MariaDB's PL/SQL dialect); only SET statements
// pass, so that the session can set sql_mode back. stmts and parseErr are what parsing the
// text gave.
func (f Facts) Grammar(stmts []ast.StmtNode, parseErr error) error {
	if !strings.Contains(strings.ToUpper(f.SQLMode), "ORACLE") {
		return nil
	}
	refuse := sqlerr.NotSupported("statements under sql_mode ORACLE through the proxy: MariaDB reads another grammar than the proxy; SET sql_mode back first")
	if parseErr != nil || len(stmts) == 0 {
		return refuse
	}
	for _, st := range stmts {
		if _, ok := st.(*ast.SetStmt); !ok {
			return refuse
		}
	}
	return nil
}
