package pool

import (
	"context"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shardproxy/shardproxy/wire"
)

// maxQueryRows bounds the rows Query keeps: it is for small administrative results.
const maxQueryRows = 10000

// Rows is a small text result read by Conn.Query: column names and values (nil for NULL).
type Rows struct {
	Columns []string
	Values  [][]*string
}

// Get returns the value of column col in row i ("" for NULL, a missing row or column).
func (r *Rows) Get(i int, col string) string {
	if i < 0 || i >= len(r.Values) {
		return ""
	}
	for j, c := range r.Columns {
		if c == col && j < len(r.Values[i]) && r.Values[i][j] != nil {
			return *r.Values[i][j]
		}
	}
	return ""
}

// Query runs an administrative text query that returns one small result set (SHOW SLAVE
// STATUS, SELECT MASTER_GTID_WAIT(...)) and reads it whole, bounded by ctx as Exec is. A
// statement answered by OK returns empty Rows; more than maxQueryRows rows is an error.
func (c *Conn) Query(ctx context.Context, query string) (*Rows, error) {
	var rows *Rows
	err := c.withContext(ctx, func() error {
		if err := c.writeCommand(mysql.COM_QUERY, query); err != nil {
			return err
		}
		var err error
		rows, err = c.readRows()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pool: query on %s (conn %d): %w", c.pool.opts.Addr, c.id, err)
	}
	return rows, nil
}

// readRows reads the answer of a COM_QUERY expected to be one result set (or an OK).
func (c *Conn) readRows() (*Rows, error) {
	p, err := c.wc.ReadPacket()
	if err != nil {
		return nil, err
	}
	switch {
	case wire.IsErr(p):
		return nil, wire.ParseErr(p)
	case len(p) > 0 && p[0] == wire.OKHeader:
		ok, err := wire.ParseOK(p)
		if err != nil {
			return nil, err
		}
		c.st.SetStatus(ok.Status)
		return &Rows{}, c.moreResults(ok.Status)
	}
	n, m := wire.LenencInt(p)
	if m == 0 || n == 0 || n > 4096 {
		return nil, fmt.Errorf("%w: column count", wire.ErrMalformed)
	}
	r := &Rows{}
	for {
		p, err := c.wc.ReadPacket()
		if err != nil {
			return nil, err
		}
		if wire.IsEOF(p) {
			break
		}
		name, ok := wire.ParseColumnName(p)
		if !ok {
			return nil, fmt.Errorf("%w: column definition", wire.ErrMalformed)
		}
		r.Columns = append(r.Columns, name)
	}
	if uint64(len(r.Columns)) != n {
		return nil, fmt.Errorf("%w: %d column definitions for %d columns", wire.ErrMalformed, len(r.Columns), n)
	}
	for {
		p, err := c.wc.ReadPacket()
		if err != nil {
			return nil, err
		}
		if wire.IsErr(p) {
			return nil, wire.ParseErr(p)
		}
		if wire.IsEOF(p) {
			st, _ := wire.Status(p)
			c.st.SetStatus(st)
			return r, c.moreResults(st)
		}
		row, err := parseTextRow(p, len(r.Columns))
		if err != nil {
			return nil, err
		}
		if len(r.Values) >= maxQueryRows {
			return nil, fmt.Errorf("pool: query: more than %d rows", maxQueryRows)
		}
		r.Values = append(r.Values, row)
	}
}

// moreResults drains any further results (a stored procedure's closing OK).
func (c *Conn) moreResults(status uint16) error {
	if status&wire.StatusMoreResults == 0 {
		return nil
	}
	_, err := c.readResults()
	return err
}

func parseTextRow(p []byte, n int) ([]*string, error) {
	vals := make([]*string, 0, n)
	for range n {
		v, null, m := wire.LenencString(p)
		if m == 0 {
			return nil, fmt.Errorf("%w: text row", wire.ErrMalformed)
		}
		p = p[m:]
		if null {
			vals = append(vals, nil)
			continue
		}
		s := string(v)
		vals = append(vals, &s)
	}
	return vals, nil
}
