package merge

// OrRow yields in's rows, or row alone when in yields none: an aggregate query without GROUP
// BY answers one row even over no rows (COUNT 0, every other column NULL), and a shard query
// that was given a GROUP BY to count distinct values answers none. row is owned by the
// stream from here on.
func OrRow(in Stream, row [][]byte) Stream {
	return &orRow{in: in, row: row}
}

type orRow struct {
	in   Stream
	row  [][]byte
	seen bool
	done bool
}

func (o *orRow) Next() ([][]byte, error) {
	if o.done {
		return nil, nil
	}
	r, err := o.in.Next()
	switch {
	case err != nil:
		return nil, err
	case r != nil:
		o.seen = true
		return r, nil
	case o.seen:
		o.done = true
		return nil, nil
	}
	o.done = true
	return o.row, nil
}
