package logbuf

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

func TestBufferKeepsAll(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprintf(&b, "w%d level=info msg=hello\n", i)
			}
		})
	}
	wg.Wait()
	if got := len(b.String()); got != 400*len("w0 level=info msg=hello\n") {
		t.Errorf("kept %d bytes, want %d", got, 400*len("w0 level=info msg=hello\n"))
	}
	if got := b.Lines(); got != 400 {
		t.Errorf("Lines() = %d, want 400", got)
	}
	if got := len(b.LinesWith("w2", "msg=hello")); got != 100 {
		t.Errorf("LinesWith(w2, msg=hello) has %d lines, want 100", got)
	}
}

func TestCapped(t *testing.T) {
	b := Capped(10)
	n, err := b.Write([]byte("abc\ndefgh\nijkl\n"))
	if n != 15 || err != nil {
		t.Errorf("Write = %d, %v; want 15, nil", n, err)
	}
	if n, err := b.Write([]byte("more\n")); n != 5 || err != nil {
		t.Errorf("Write beyond the cap = %d, %v; want 5, nil", n, err)
	}
	if got := b.String(); got != "abc\ndefgh\n" {
		t.Errorf("String() = %q, want %q", got, "abc\ndefgh\n")
	}
	if got := b.Lines(); got != 4 {
		t.Errorf("Lines() = %d, want 4", got)
	}
}

func TestLineMatching(t *testing.T) {
	var b Buffer
	if _, err := b.Write([]byte("msg=reclaimed reason=watermark pod=a\nmsg=reclaimed reason=node-pressure pod=b\nmsg=synchronized\n")); err != nil {
		t.Fatal(err)
	}
	if got, want := b.LinesWith("msg=reclaimed", "pod=b"), []string{"msg=reclaimed reason=node-pressure pod=b"}; !slices.Equal(got, want) {
		t.Errorf("LinesWith = %q, want %q", got, want)
	}
	if !b.HasLine("reason=watermark", "pod=a") {
		t.Error("HasLine(reason=watermark, pod=a) = false, want true")
	}
	if b.HasLine("reason=watermark", "pod=b") {
		t.Error("HasLine(reason=watermark, pod=b) = true: the words are on two lines")
	}
}
