package window

import (
	"bytes"
	"testing"
)

func TestWindow(t *testing.T) {
	var w Window
	var all []byte
	for i, n := range []int{0, 10, 1000, Size - 5, 7, Size + 3, 40000, 1, 2, 3} {
		p := bytes.Repeat([]byte{byte(i + 1)}, n)
		for j := range p {
			p[j] += byte(j)
		}
		w.Write(p)
		all = append(all, p...)
		want := all[max(0, len(all)-Size):]
		if !bytes.Equal(w.Bytes(), want) {
			t.Fatalf("after write %d of %d bytes: window of %d bytes, want the last %d", i, n, len(w.Bytes()), len(want))
		}
	}
}
