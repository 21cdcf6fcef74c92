package router

import (
	"regexp"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shardproxy/shardproxy/rules"
	"github.com/shardproxy/shardproxy/sqlerr"
	"github.com/shardproxy/shardproxy/wire"
)

// showDatabases answers SHOW DATABASES with the logical databases the user may use.
func (s *Session) showDatabases(snap *rules.Snapshot, n *ast.ShowStmt, more bool, w wire.PacketWriter) error {
	if n.Where != nil {
		return sqlerr.NotSupported("SHOW DATABASES WHERE (use LIKE)")
	}
	title := "Database"
	var match func(string) bool
	if n.Pattern != nil {
		v, ok := n.Pattern.Pattern.(*test_driver.ValueExpr)
		if !ok {
			return sqlerr.NotSupported("SHOW DATABASES LIKE with a non-literal pattern")
		}
		pat := v.GetString()
		title += " (" + pat + ")"
		re := likeRegexp(pat)
		match = re.MatchString
	}
	u, _ := snap.User(s.user)
	names := []string{"information_schema"}
	for _, db := range snap.DatabaseNames() {
		if u != nil && u.CanUse(db) {
			names = append(names, db)
		}
	}
	var rows [][]*string
	for _, name := range names {
		if match == nil || match(name) {
			rows = append(rows, []*string{&name})
		}
	}
	col := wire.Column{
		Schema: "information_schema", Table: "SCHEMATA", OrgTable: "SCHEMATA", Name: title, OrgName: "SCHEMA_NAME",
		Charset: 45, Length: 256, Type: mysql.MYSQL_TYPE_VAR_STRING, Flags: mysql.NOT_NULL_FLAG,
	}
	status := s.status
	if more {
		status |= wire.StatusMoreResults
	}
	return wire.WriteTextResult(w, []wire.Column{col}, rows, status)
}

// likeRegexp compiles a SQL LIKE pattern (case-insensitive, as for utf8mb4_general_ci).
func likeRegexp(pat string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?is)^")
	esc := false
	if strings.HasSuffix(pat, `\`) && !strings.HasSuffix(pat, `\\`) {
		pat += `\` // a trailing escape character is literal, as in MySQL
	}
	for _, r := range pat {
		switch {
		case esc:
			b.WriteString(regexp.QuoteMeta(string(r)))
			esc = false
		case r == '\\':
			esc = true
		case r == '%':
			b.WriteString(".*")
		case r == '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}
