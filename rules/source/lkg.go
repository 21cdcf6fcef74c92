package source

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// lkgHeader starts the first line of a last-known-good file; YAML reads the line as a comment.
const lkgHeader = "# shardproxy last-known-good"

// LastKnownGood is a copy, on local disk, of the last configuration document a proxy
// applied. It is written after every successful reload and read at start-up when the
// source is unreachable. The zero value (no path) keeps nothing.
type LastKnownGood struct {
	Path string
}

// Save writes doc (from source name) atomically: a temporary file in the same directory,
// synced, then renamed over Path; mode 0600.
func (l LastKnownGood) Save(name string, doc Doc) error {
	if l.Path == "" {
		return nil
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%s source=%s revision=%d saved=%s\n", lkgHeader, strings.ReplaceAll(name, " ", "_"), doc.Revision, time.Now().UTC().Format(time.RFC3339))
	buf.Write(doc.Data)
	dir := filepath.Dir(l.Path)
	tmp, err := os.CreateTemp(dir, ".lkg-*")
	if err != nil {
		return fmt.Errorf("source: last-known-good: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("source: last-known-good: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("source: last-known-good: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("source: last-known-good: %w", err)
	}
	if err := os.Rename(tmp.Name(), l.Path); err != nil {
		return fmt.Errorf("source: last-known-good: %w", err)
	}
	return nil
}

// Load reads the copy: the document and the revision it had in its source.
func (l LastKnownGood) Load() (Doc, error) {
	if l.Path == "" {
		return Doc{}, fmt.Errorf("source: last-known-good: no path configured")
	}
	data, err := os.ReadFile(l.Path)
	if err != nil {
		return Doc{}, fmt.Errorf("source: last-known-good: %w", err)
	}
	first, rest, _ := bytes.Cut(data, []byte("\n"))
	if !bytes.HasPrefix(first, []byte(lkgHeader)) {
		return Doc{}, fmt.Errorf("source: last-known-good %s: not written by shardproxy (first line %q)", l.Path, first)
	}
	var rev int64
	for _, f := range strings.Fields(string(first[len(lkgHeader):])) {
		if v, ok := strings.CutPrefix(f, "revision="); ok {
			rev, err = strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Doc{}, fmt.Errorf("source: last-known-good %s: bad revision %q", l.Path, v)
			}
		}
	}
	return NewDoc(rest, rev), nil
}
