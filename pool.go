package websocket

import (
	"math/bits"
	"sync"
)

// Buffers for frames and input come from pools, one per power-of-two
// size between minPooled and maxPooled, so that an idle connection holds
// none and a busy one reuses what another just gave back.  A buffer of
// another size is left to the garbage collector, which keeps the pools
// bounded.  Every pooled buffer has bufferHeadroom bytes more than its
// power of two, so that a payload of that size fits with the header of
// its frame.
const (
	minPooledShift = 9  // 512 bytes
	maxPooledShift = 22 // 4 MiB
	bufferHeadroom = 16 // at least wire.MaxHeaderSize
)

var bufferPools [maxPooledShift - minPooledShift + 1]sync.Pool

// getBuffer returns a buffer whose length is n or more (its full
// capacity), from a pool unless n is above the largest pooled size.
// Buffers travel as pointers, so that giving one back allocates
// nothing.
func getBuffer(n int) *[]byte {
	class := sizeClass(n)
	if class < 0 {
		b := make([]byte, n)
		return &b
	}
	if p, ok := bufferPools[class].Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, 1<<(class+minPooledShift)+bufferHeadroom)
	return &b
}

// putBuffer gives a buffer back for reuse.  The caller must not use it,
// or any slice of it, afterwards.
func putBuffer(p *[]byte) {
	*p = (*p)[:cap(*p)]
	class := sizeClass(len(*p))
	if class < 0 || len(*p) != 1<<(class+minPooledShift)+bufferHeadroom {
		return // not one of ours: the garbage collector takes it
	}
	bufferPools[class].Put(p)
}

// sizeClass returns the index of the smallest pool whose buffers hold n
// bytes, or -1 if n is above the largest.
func sizeClass(n int) int {
	n -= bufferHeadroom
	if n <= 1<<minPooledShift {
		return 0
	}
	shift := bits.Len(uint(n - 1))
	if shift > maxPooledShift {
		return -1
	}
	return shift - minPooledShift
}
