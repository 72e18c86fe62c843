package wire

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"unicode/utf8"
)

// validateInPieces runs the streaming validator over s cut at the given
// points.
func validateInPieces(s []byte, cuts []int) bool {
	var v UTF8Validator
	prev := 0
	for _, c := range append(cuts, len(s)) {
		if !v.Write(s[prev:c]) {
			return false
		}
		prev = c
	}
	return v.Complete()
}

func TestUTF8ValidatorAgreesWithStdlib(t *testing.T) {
	samples := []string{
		"", "ascii", "κόσμε", "€", "𝄞 music", "\U0010FFFF", "\uFFFD",
		"\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80",
		"\xf8\x88\x80\x80\x80", "\xce", "\xe2\x82", "a\x80b", "\xf0\x9f\x98", "\xf0\x9f\x98\x80",
	}
	for _, s := range samples {
		for cut := 0; cut <= len(s); cut++ {
			if got, want := validateInPieces([]byte(s), []int{cut}), utf8.ValidString(s); got != want {
				t.Errorf("%q cut at %d: valid = %v, want %v", s, cut, got, want)
			}
		}
	}
}

func TestUTF8ValidatorRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	alphabet := []string{"a", "é", "€", "𝄞", "\x80", "\xbf", "\xc3", "\xe2", "\xf0", "\xed\xa0", "\xf4\x8f", "\xf4\x90"}
	for range 20000 {
		var s []byte
		for range rng.IntN(12) {
			s = append(s, alphabet[rng.IntN(len(alphabet))]...)
		}
		var cuts []int
		for c := 0; c < len(s); c += 1 + rng.IntN(4) {
			cuts = append(cuts, c)
		}
		if got, want := validateInPieces(s, cuts), utf8.Valid(s); got != want {
			t.Fatalf("% x cut at %v: valid = %v, want %v", s, cuts, got, want)
		}
	}
}

// TestUTF8ValidatorFailsFast checks that an impossible sequence is
// reported at its first wrong byte, before the message ends.
func TestUTF8ValidatorFailsFast(t *testing.T) {
	for _, prefix := range []string{"\xf4\x90", "\xe0\x80", "\xed\xa0", "\xc1", "ok\xf5"} {
		var v UTF8Validator
		if v.Write([]byte(prefix)) {
			t.Errorf("%q accepted as the start of valid UTF-8", prefix)
		}
	}
}

func BenchmarkUTF8Validator(b *testing.B) {
	text := []byte(string(make([]byte, 32<<10)) + "κόσμε €")
	for _, chunk := range []int{1000, 32 << 10} {
		b.Run("chunks of "+strconv.Itoa(chunk)+"B", func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				var v UTF8Validator
				for i := 0; i < len(text); i += chunk {
					v.Write(text[i:min(i+chunk, len(text))])
				}
				if !v.Complete() {
					b.Fatal("invalid")
				}
			}
		})
	}
	b.Run("stdlib utf8.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			utf8.Valid(text)
		}
	})
}
