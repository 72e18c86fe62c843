package websocket

import "testing"

func TestBufferPool(t *testing.T) {
	for _, n := range []int{0, 1, 512, 528, 529, 4096, 4112, 65536 + 14, 1 << 22, 1<<22 + bufferHeadroom} {
		p := getBuffer(n)
		if len(*p) < n {
			t.Errorf("getBuffer(%d) has %d bytes", n, len(*p))
		}
		if class := sizeClass(n); class >= 0 && len(*p) != 1<<(class+minPooledShift)+bufferHeadroom {
			t.Errorf("getBuffer(%d) has %d bytes, not its class's size", n, len(*p))
		}
		putBuffer(p)
	}
	if p := getBuffer(1<<22 + bufferHeadroom + 1); sizeClass(len(*p)) != -1 {
		t.Errorf("a buffer above the largest class is pooled")
	}
	if got := len(*getBuffer(65536 + 14)); got != 65536+bufferHeadroom {
		t.Errorf("a 64 KiB payload with its header takes a buffer of %d bytes", got)
	}
}
