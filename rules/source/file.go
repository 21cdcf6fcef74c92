package source

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// File is a configuration file, reloaded on SIGHUP. The zero value is not usable; make one
// with NewFile.
type File struct {
	path string
	hup  chan os.Signal
}

var _ Source = (*File)(nil)

// NewFile returns the source of the file at path (read at each Fetch, not now). From now
// until Close, SIGHUP no longer terminates the process: it is queued for Watch (one pending
// signal is kept while nobody watches).
func NewFile(path string) *File {
	f := &File{path: path, hup: make(chan os.Signal, 1)}
	signal.Notify(f.hup, syscall.SIGHUP)
	return f
}

// Close stops catching SIGHUP. It is idempotent.
func (f *File) Close() error {
	signal.Stop(f.hup)
	return nil
}

// Name returns "file:PATH".
func (f *File) Name() string { return "file:" + f.path }

// Fetch reads the file.
func (f *File) Fetch(context.Context) (Doc, error) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return Doc{}, fmt.Errorf("source: %w", err)
	}
	return NewDoc(data, 0), nil
}

// Watch calls changed on every SIGHUP the process receives, until ctx is done.
func (f *File) Watch(ctx context.Context, changed func()) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.hup:
			changed()
		}
	}
}
