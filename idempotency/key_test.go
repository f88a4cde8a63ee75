package idempotency_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{`"abc"`, "abc", true},
		{`abc`, "abc", true},
		{` "abc"	`, "abc", true},
		{`8e03978e-40d5-43e8-bc93-6894a57f9324`, "8e03978e-40d5-43e8-bc93-6894a57f9324", true},
		{`"a\"b\\c"`, `a"b\c`, true},
		{`a"b`, `a"b`, true},
		{`"` + strings.Repeat("k", 255) + `"`, strings.Repeat("k", 255), true},
		{strings.Repeat("k", 255), strings.Repeat("k", 255), true},
		{"", "", false},
		{`""`, "", false},
		{`"abc`, "", false},
		{`"abc";p=1`, "", false},
		{`"a b"`, "", false},
		{`a b`, "", false},
		{`"a\nb"`, "", false},
		{`"a\x"`, "", false},
		{"caf\u00e9", "", false},
		{"a\x00", "", false},
		{`"` + strings.Repeat("k", 256) + `"`, "", false},
		{strings.Repeat("k", 256), "", false},
	}
	for _, tc := range tests {
		got, err := idempotency.ParseKey(tc.in)
		if !tc.ok {
			assert.ErrorIs(t, err, idempotency.ErrInvalidKey, "%q", tc.in)
			continue
		}
		require.NoError(t, err, "%q", tc.in)
		assert.Equal(t, tc.want, got)
	}
}

func TestFingerprintAndScopedKeyAreUnambiguous(t *testing.T) {
	t.Parallel()
	assert.NotEqual(t, idempotency.Fingerprint("POST", "/a", []byte("b")), idempotency.Fingerprint("POST", "/ab", nil))
	assert.NotEqual(t, idempotency.Fingerprint("POST", "/a", nil), idempotency.Fingerprint("PATCH", "/a", nil))
	assert.Equal(t, idempotency.Fingerprint("POST", "/a", nil), idempotency.Fingerprint("POST", "/a", []byte{}))
	assert.NotEqual(t, idempotency.ScopedKey("t1", "POST", "/a", "k"), idempotency.ScopedKey("t", "1POST", "/a", "k"))
	assert.Len(t, idempotency.ScopedKey("", "", "", ""), 64)
}

// TestFingerprintAndScopedKeyAreStable pins the hashes: records stored by
// an earlier version must keep matching (values from the kit's first
// encoding: 8-byte big-endian length before each part).
func TestFingerprintAndScopedKeyAreStable(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "9205c799381d8026f1bb26410223d54f5c7166497675c4a7011a2a69fb1a36fb", idempotency.ScopedKey("4:acme/alice", "POST", "/things", "k-1"))
	assert.Equal(t, "5d263e0963c7389dbea25a3d45e8ef1cfbf2e3965bc2f6df2cbccbe1ff733864", idempotency.Fingerprint("POST", "/things?x=1", []byte(`{"a":1}`)))
	assert.Equal(t, "8f441fcc3711dfa634d912583d7a81fdeb5301fef37748aafc09b7282d30309c", idempotency.Fingerprint("POST", "/t", []byte(strings.Repeat("b", 5000))))
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{`"abc"`, "abc", `"a\"b"`, `"a\\"`, `"x";y`, " \t", `"`, strings.Repeat("z", 255)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		k, err := idempotency.ParseKey(in)
		if err != nil {
			return
		}
		if k == "" || len(k) > idempotency.MaxKeyLength {
			t.Fatalf("ParseKey(%q) = %q: bad length", in, k)
		}
		for i := 0; i < len(k); i++ {
			if k[i] < 0x21 || k[i] > 0x7e {
				t.Fatalf("ParseKey(%q) = %q: not visible ASCII", in, k)
			}
		}
		// The quoted form of an accepted key parses back to it.
		quoted := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(k) + `"`
		k2, err := idempotency.ParseKey(quoted)
		if err != nil || k2 != k {
			t.Fatalf("round trip of %q via %q = %q, %v", k, quoted, k2, err)
		}
	})
}

func FuzzFingerprint(f *testing.F) {
	f.Add("POST", "/a", []byte("b"), "POST", "/ab", []byte(""))
	f.Add("POST", "/x?y=1", []byte(`{"a":1}`), "POST", "/x?y=1", []byte(`{"a":2}`))
	f.Add("PATCH", "", []byte{0, 1}, "PATCH", "\x00", []byte{1})
	f.Fuzz(func(t *testing.T, m1, p1 string, b1 []byte, m2, p2 string, b2 []byte) {
		f1, f2 := idempotency.Fingerprint(m1, p1, b1), idempotency.Fingerprint(m2, p2, b2)
		if len(f1) != 64 || f1 != idempotency.Fingerprint(m1, p1, append([]byte(nil), b1...)) {
			t.Fatalf("fingerprint not deterministic or wrong length: %q", f1)
		}
		same := m1 == m2 && p1 == p2 && string(b1) == string(b2)
		if same != (f1 == f2) {
			t.Fatalf("(%q,%q,%q) vs (%q,%q,%q): same=%v but fingerprints equal=%v", m1, p1, b1, m2, p2, b2, same, f1 == f2)
		}
		s1, s2 := idempotency.ScopedKey(m1, p1, string(b1), "k"), idempotency.ScopedKey(m2, p2, string(b2), "k")
		if same != (s1 == s2) {
			t.Fatalf("scoped keys collide across distinct inputs")
		}
	})
}
