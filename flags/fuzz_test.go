package flags_test

import (
	"testing"

	"github.com/systembuilderhub/hardening/flags"
)

// FuzzValidateName: every accepted name is 1..100 bytes of a-z 0-9 - _ .
// (so it is safe as a Redis hash field, a metric label and a URL segment).
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"llm.streaming", "preview.device-presets", "", "A", "a|b", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if flags.ValidateName(name) != nil {
			return
		}
		if len(name) == 0 || len(name) > flags.MaxNameLen {
			t.Fatalf("accepted %q of length %d", name, len(name))
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				t.Fatalf("accepted %q with byte %q", name, c)
			}
		}
	})
}

// FuzzDecodeCursor: cursors from clients never panic, decode only to
// positive IDs, and only the canonical form is accepted.
func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{"a1", "azz", "a0", "a-1", "x", "", "a" + "zzzzzzzzzzzzzz", "A1", "a+1", "a01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := flags.DecodeCursor(s)
		if err != nil {
			return
		}
		if id <= 0 {
			t.Fatalf("%q decoded to %d", s, id)
		}
		if flags.EncodeCursor(id) != s {
			t.Fatalf("%q accepted, canonical form is %q", s, flags.EncodeCursor(id))
		}
	})
}
