// Package logbuf holds what the processes of a test write (a plugin's log,
// the NRI adaptation's logrus output): a buffer safe for concurrent writers
// and readers, optionally capped, with the line matching the tests assert on.
package logbuf

import (
	"bytes"
	"slices"
	"strings"
	"sync"
)

// Buffer is a bytes.Buffer safe for concurrent writers and readers. The zero
// value keeps everything; Capped keeps only the beginning.
type Buffer struct {
	mu  sync.Mutex
	max int // 0: no cap
	b   bytes.Buffer
	n   int
}

// Capped returns a Buffer that keeps the first max bytes written to it and
// counts the lines of all of them.
func Capped(max int) *Buffer { return &Buffer{max: max} }

// Write keeps p (what fits under the cap, if any); it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += bytes.Count(p, []byte{'\n'})
	if b.max == 0 {
		return b.b.Write(p)
	}
	if room := b.max - b.b.Len(); room > 0 {
		b.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// String is what the buffer kept.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Lines counts the newlines written, those beyond the cap included.
func (b *Buffer) Lines() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// LinesWith returns the lines kept that contain every one of words.
func (b *Buffer) LinesWith(words ...string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if !slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(l, w) }) {
			out = append(out, l)
		}
	}
	return out
}

// HasLine tells whether one line kept contains every one of words.
func (b *Buffer) HasLine(words ...string) bool { return len(b.LinesWith(words...)) > 0 }
