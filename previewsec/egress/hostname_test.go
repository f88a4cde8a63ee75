package egress

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	ok := []struct{ in, want string }{
		{"api.openai.com", "api.openai.com"},
		{"API.OpenAI.COM", "api.openai.com"},
		{"api.openai.com.", "api.openai.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"BÜCHER.example", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"ａｐｉ.ｏｐｅｎａｉ.ｃｏｍ", "api.openai.com"},
		{"api。openai。com", "api.openai.com"},
		{"ⓛⓞⓒⓐⓛⓗⓞⓢⓣ", "localhost"},
		{"localhost", "localhost"},
		{"r3---sn-abc.googlevideo.com", "r3---sn-abc.googlevideo.com"},
		{"R3---SN.bücher.example", "r3---sn.xn--bcher-kva.example"},
		{"XN--BCHER-KVA.example", "xn--bcher-kva.example"},
		{"bücher.example.", "xn--bcher-kva.example"},
		{"ex\u200bample.com", "example.com"},
		{"a-b.c-d.example", "a-b.c-d.example"},
		{"1.2.3.4", "1.2.3.4"},
		{"127.0.0.1", "127.0.0.1"},
		{"127.0.0.1.", "127.0.0.1"},
		{"１２７.０.０.１", "127.0.0.1"},
		{"127。0。0。1", "127.0.0.1"},
		{"::1", "::1"},
		{"[::1]", "::1"},
		{"[0:0:0:0:0:0:0:1]", "::1"},
		{"::FFFF:127.0.0.1", "::ffff:127.0.0.1"},
		{"[2001:DB8::1]", "2001:db8::1"},
		{"3com.example", "3com.example"},
		{"123.example", "123.example"},
		{"0x7f.example", "0x7f.example"},
		{strings.Repeat("a", 63) + ".example", strings.Repeat("a", 63) + ".example"},
	}
	for _, tc := range ok {
		got, err := NormalizeHost(tc.in)
		if assert.NoError(t, err, tc.in) {
			assert.Equal(t, tc.want, got, tc.in)
		}
	}
	bad := []string{
		"", ".", "..", "a..b", ".example.com", "example.com..",
		"user@example.com", "user:pass@example.com", "example.com@127.0.0.1",
		"0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "2130706433", "017700000001",
		"127.1", "127.0.1", "0", "0x0", "127.000.000.001", "127.0.0.01", "1.1.1.1.1",
		"169.254.43518", "0xa9fea9fe", "0251.0376.0251.0376", "0XA9.0XFE.0XA9.0XFE",
		"fe80::1%eth0", "[fe80::1%25eth0]", "[127.0.0.1]", "[::1", "::1]", "[::1]x",
		"exa mple.com", "exa\tmple.com", "example.com\x00", "example.com/", "example.com\\", "a?b", "a#b",
		"%31%32%37.0.0.1", "example.com:443", "-leading.example", "trailing-.example",
		"under_score.example", "*.example.com", "xn--zz-.example", strings.Repeat("a", 64) + ".example",
		strings.Repeat("abcdefghi.", 26) + "com", strings.Repeat("x", 2000),
		"\u202eexample.com", "a.b.0x10", "xn--a.example", "bücher..example", "bücher。。example", "a.xn--",
	}
	for _, in := range bad {
		got, err := NormalizeHost(in)
		assert.Error(t, err, "%q normalised to %q", in, got)
		assert.True(t, errors.Is(err, ErrMalformedHost), in)
	}
}

func TestSplitHostPort(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		def  int
		host string
		port int
		bad  bool
	}{
		{"example.com:443", 0, "example.com", 443, false},
		{"example.com", 80, "example.com", 80, false},
		{"example.com", 0, "", 0, true},
		{"[::1]:8080", 0, "[::1]", 8080, false},
		{"[::1]", 443, "[::1]", 443, false},
		{"::1", 443, "::1", 443, false},
		{"example.com:0", 0, "", 0, true},
		{"example.com:65536", 0, "", 0, true},
		{"example.com:080", 0, "", 0, true},
		{"example.com:+80", 0, "", 0, true},
		{"example.com:", 0, "", 0, true},
		{"1:2:3:4", 0, "", 0, true},
		{"[::1]x", 0, "", 0, true},
		{"[::1", 0, "", 0, true},
		{"", 0, "", 0, true},
	}
	for _, tc := range cases {
		h, p, err := splitHostPort(tc.in, tc.def)
		if tc.bad {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.host, h, tc.in)
		assert.Equal(t, tc.port, p, tc.in)
	}
}
