package websocket_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gowebsock/websocket"
)

// hugeMessageSize needs the 64-bit length encoding, and more than 32
// bits of it.
const hugeMessageSize = 4<<30 + 1

// TestCompatHugeMessage streams one binary frame of 4 GiB + 1 byte
// through the reference's echo handler (ReceiveMessage, SendMessage,
// io.Copy) and checks every byte of the echo, while watching that the
// process's heap stays small: neither side may hold the message.
//
// It moves 8 GiB over loopback, so it is skipped with -short and under
// the race detector; .ci/run runs it on its own, without -race.
func TestCompatHugeMessage(t *testing.T) {
	if testing.Short() || websocket.RaceEnabled {
		t.Skip("moves 8 GiB; run without -short and -race")
	}
	srv := httptest.NewServer(&websocket.Handler{Handle: echo})
	defer srv.Close()
	peer := rawDial(t, "ws"+strings.TrimPrefix(srv.URL, "http"))

	// The payload repeats a random block whose length is a multiple
	// of 4, so that one masked copy of it serves the whole message.
	block := make([]byte, 64<<10)
	rand.Read(block)
	var key [4]byte
	rand.Read(key[:])
	masked := bytes.Clone(block)
	for i := range masked {
		masked[i] ^= key[i%4]
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peakHeap atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peakHeap.Load() {
				peakHeap.Store(m.HeapInuse)
			}
		}
	}()

	start := time.Now()
	sendErr := make(chan error, 1)
	go func() {
		hdr := []byte{0x82, 0x80 | 127}
		hdr = binary.BigEndian.AppendUint64(hdr, hugeMessageSize)
		hdr = append(hdr, key[:]...)
		if _, err := peer.Write(hdr); err != nil {
			sendErr <- err
			return
		}
		for sent := 0; sent+len(masked) <= hugeMessageSize; sent += len(masked) {
			if _, err := peer.Write(masked); err != nil {
				sendErr <- err
				return
			}
		}
		// The one byte past 4 GiB is at offset 0 of the block again.
		_, err := peer.Write(masked[:1])
		sendErr <- err
	}()

	// Read the echo, however the server cut it into frames.
	br := bufio.NewReaderSize(peer, 256<<10)
	var received int64
	chunk := make([]byte, 64<<10)
	for frames := 0; received < hugeMessageSize; frames++ {
		var hdr [2]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatalf("after %d bytes of the echo: %v", received, err)
		}
		op, fin := hdr[0]&0x0f, hdr[0]&0x80 != 0
		if (frames == 0 && op != 0x2) || (frames > 0 && op != 0x0) || hdr[1]&0x80 != 0 {
			t.Fatalf("frame %d: header %x", frames, hdr)
		}
		n := int64(hdr[1])
		switch n {
		case 126:
			var ext [2]byte
			io.ReadFull(br, ext[:])
			n = int64(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			io.ReadFull(br, ext[:])
			n = int64(binary.BigEndian.Uint64(ext[:]))
		}
		if received+n > hugeMessageSize || fin != (received+n == hugeMessageSize) {
			t.Fatalf("frame %d of %d bytes, fin %v, after %d bytes", frames, n, fin, received)
		}
		for n > 0 {
			// Compare in pieces that stay within one block.
			off := int(received % int64(len(block)))
			piece := chunk[:min(int64(len(block)-off), n)]
			if _, err := io.ReadFull(br, piece); err != nil {
				t.Fatalf("after %d bytes of the echo: %v", received, err)
			}
			if !bytes.Equal(piece, block[off:off+len(piece)]) {
				t.Fatalf("the echo differs within bytes %d to %d", received, received+int64(len(piece)))
			}
			received += int64(len(piece))
			n -= int64(len(piece))
		}
	}
	elapsed := time.Since(start)
	if err := <-sendErr; err != nil {
		t.Fatalf("sending: %v", err)
	}
	close(stopSampling)
	<-sampled

	peer.Write(maskedFrame(0x88, binary.BigEndian.AppendUint16(nil, 1000)))
	if code := readCloseCode(t, peer); code != websocket.StatusOK {
		t.Errorf("close code %v", code)
	}

	growth := int64(peakHeap.Load()) - int64(before.HeapInuse)
	t.Logf("echoed %d bytes in %v (%.0f MiB/s each way); peak heap growth %.1f MiB; peak RSS of the test process %s",
		received, elapsed.Round(time.Millisecond), float64(received)/elapsed.Seconds()/(1<<20), float64(growth)/(1<<20), peakRSS())
	if growth > 64<<20 {
		t.Errorf("the heap grew by %d MiB while streaming, want constant memory", growth>>20)
	}
}

// peakRSS returns the process's peak resident set size as the kernel
// reports it, or "unknown" where there is no /proc.
func peakRSS() string {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(status)) {
		if value, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.Join(strings.Fields(value), " ")
		}
	}
	return "unknown"
}
