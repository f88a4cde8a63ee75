package previewsec_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var sha256New = sha256.New

func time30m() time.Duration { return 30 * time.Minute }

func jwtParseForAudience(tok string, key []byte, aud string) (*jwt.Token, error) {
	return jwt.Parse(tok, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience(aud))
}

func benchID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
