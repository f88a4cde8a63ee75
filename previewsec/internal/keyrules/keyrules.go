// Package keyrules holds the rules previewsec and its stores share about
// key ids, keys and revocations: the key id format and the checks a store
// makes before it writes. It is internal: store implementers outside this
// module rely on the KeyStore and RevocationStore contracts and the
// keystoretest conformance suite instead.
package keyrules

import (
	"errors"
	"time"
)

// idLayout formats a period start as a key id: compact ISO 8601 in UTC,
// made only of digits, 'T' and 'Z' so it is safe in any log or key.
const idLayout = "20060102T150405Z"

// SecretSize is the size in bytes of a signing key (256 bits), the least a
// store accepts.
const SecretSize = 32

// KeyID returns the key id of the period starting at start.
func KeyID(start time.Time) string {
	return start.UTC().Format(idLayout)
}

// ParseKeyID returns the period start a key id names. Only ids of exactly
// the form KeyID writes are accepted, so a kid with path, SQL or other
// characters never reaches a store; the reject path does not allocate.
func ParseKeyID(kid string) (time.Time, bool) {
	if len(kid) != len(idLayout) {
		return time.Time{}, false
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		switch i {
		case 8:
			if c != 'T' {
				return time.Time{}, false
			}
		case 15:
			if c != 'Z' {
				return time.Time{}, false
			}
		default:
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
		}
	}
	t, err := time.Parse(idLayout, kid)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// CheckKey reports whether a key is complete enough to store. Stores call
// it at the top of CreateKey.
func CheckKey(id string, secret []byte, periodStart, expiresAt time.Time) error {
	switch {
	case id == "":
		return errors.New("previewsec: key without id")
	case len(secret) < SecretSize:
		return errors.New("previewsec: key secret shorter than 32 bytes")
	case periodStart.IsZero():
		return errors.New("previewsec: key without period start")
	case !expiresAt.After(periodStart):
		return errors.New("previewsec: key expires before its period starts")
	}
	return nil
}

// CheckRevocation reports whether a revocation is complete enough to
// store. kind is "pid" or "jti". Stores call it at the top of Revoke.
func CheckRevocation(kind, value string, expiresAt time.Time) error {
	switch {
	case kind != "pid" && kind != "jti":
		return errors.New("previewsec: revocation kind must be pid or jti")
	case value == "":
		return errors.New("previewsec: revocation without value")
	case expiresAt.IsZero():
		return errors.New("previewsec: revocation without expiry")
	}
	return nil
}
