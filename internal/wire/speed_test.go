package wire

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// longText is 64 KiB of mixed-script text, as chat messages and JSON
// documents carry it: mostly ASCII, with accented Latin, Cyrillic, CJK
// and emoji among it.
var longText = func() []byte {
	const sample = `{"user":"Jürgen","text":"Grüße aus München! Привет, мир. 你好，世界。 Hello, world 👋 — naïve café"}` + "\n"
	s := strings.Repeat(sample, (64<<10)/len(sample)+1)
	s = s[:64<<10]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return []byte(s)
}()

// BenchmarkLongText compares, on the same long text, the standard
// library's utf8.Valid with the validator fed in 4 KiB pieces (as the
// connection reads them) and with masking.
func BenchmarkLongText(b *testing.B) {
	b.Run("utf8.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(longText)))
		for b.Loop() {
			if !utf8.Valid(longText) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("UTF8Validator in 4 KiB pieces", func(b *testing.B) {
		b.SetBytes(int64(len(longText)))
		for b.Loop() {
			var v UTF8Validator
			for i := 0; i < len(longText); i += 4096 {
				if !v.Write(longText[i:min(i+4096, len(longText))]) {
					b.Fatal("invalid")
				}
			}
			if !v.Complete() {
				b.Fatal("incomplete")
			}
		}
	})
	b.Run("Mask", func(b *testing.B) {
		buf := append([]byte(nil), longText...)
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			Mask([4]byte{1, 2, 3, 4}, 0, buf)
		}
	})
}
