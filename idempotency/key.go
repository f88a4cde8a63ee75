package idempotency

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
)

// MaxKeyLength is the longest Idempotency-Key value accepted, in characters.
const MaxKeyLength = 255

// ErrInvalidKey is returned by ParseKey for a malformed header value.
var ErrInvalidKey = errors.New("idempotency: malformed Idempotency-Key")

// ParseKey parses one Idempotency-Key header value. It accepts the IETF
// draft's Structured Field string form ("abc", with \" and \\ escapes) and,
// for clients that omit the quotes, a bare token. Surrounding spaces and
// tabs are ignored. The key itself must be 1 to MaxKeyLength characters of
// visible ASCII (0x21-0x7E); parameters after a quoted string are rejected.
func ParseKey(v string) (string, error) {
	v = strings.Trim(v, " \t")
	if v == "" {
		return "", ErrInvalidKey
	}
	if v[0] != '"' {
		if len(v) > MaxKeyLength || !visible(v) {
			return "", ErrInvalidKey
		}
		return v, nil
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\':
			i++
			if i >= len(v) || (v[i] != '"' && v[i] != '\\') {
				return "", ErrInvalidKey
			}
			b.WriteByte(v[i])
		case c == '"':
			if i != len(v)-1 {
				return "", ErrInvalidKey // parameters or trailing garbage
			}
			k := b.String()
			if k == "" || len(k) > MaxKeyLength || !visible(k) {
				return "", ErrInvalidKey
			}
			return k, nil
		case c < 0x21 || c > 0x7e:
			return "", ErrInvalidKey
		default:
			b.WriteByte(c)
		}
		if b.Len() > MaxKeyLength {
			return "", ErrInvalidKey
		}
	}
	return "", ErrInvalidKey // no closing quote
}

func visible(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Fingerprint returns the hex SHA-256 of a request's method, target (path
// and query) and body. Each part is length-prefixed, so distinct triples
// never share a fingerprint by concatenation.
func Fingerprint(method, target string, body []byte) string {
	// One buffer on the stack for the usual small request; a body that
	// does not fit is hashed from where it is.
	var buf [1024]byte
	b := appendString(appendString(buf[:0], method), target)
	b = binary.BigEndian.AppendUint64(b, uint64(len(body)))
	if len(b)+len(body) <= len(buf) {
		return hexSum(sha256.Sum256(append(b, body...)))
	}
	h := sha256.New()
	_, _ = h.Write(b)
	_, _ = h.Write(body)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return hexSum(sum)
}

// ScopedKey returns the store key of an Idempotency-Key: the hex SHA-256
// of the scope (tenant and principal), method, path and key, each
// length-prefixed. Two scopes sending the same key never share a record.
func ScopedKey(scope, method, path, key string) string {
	var buf [512]byte
	b := appendString(appendString(appendString(appendString(buf[:0], scope), method), path), key)
	return hexSum(sha256.Sum256(b))
}

// appendString appends the length-prefixed s to b.
func appendString(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint64(b, uint64(len(s))), s...)
}

// hexSum returns sum in lower-case hex with one allocation.
func hexSum(sum [sha256.Size]byte) string {
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}
