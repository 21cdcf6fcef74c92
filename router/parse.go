package router

import (
	"fmt"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
)

// parseSafely parses sql with p. The TiDB parser can panic on input it accepts lexically but
// cannot represent (a numeric literal of more than 81 digits panics its decimal type: "not
// implemented"); such a statement is answered as a syntax error the proxy cannot read, and
// the session goes on.
func parseSafely(p *parser.Parser, sql string) (stmts []ast.StmtNode, err error) {
	defer func() {
		if r := recover(); r != nil {
			stmts, err = nil, fmt.Errorf("the statement cannot be read by the proxy's parser (%v)", r)
		}
	}()
	stmts, _, err = p.Parse(sql, "", "")
	return stmts, err
}
