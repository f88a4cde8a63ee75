package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/streamauth"
)

// claims are those of an orders bearer token: sub, org (the tenant),
// roles, exp and iat.
type claims struct {
	Org   string   `json:"org"`
	Roles []string `json:"roles,omitempty"`
	jwt.RegisteredClaims
}

// bearerAuth verifies HS256 bearer tokens. It is the service's one
// hardening.Authenticator: REST routes and the event stream use it alike.
type bearerAuth struct{ secret []byte }

// Authenticate returns the caller of a valid "Authorization: Bearer"
// token. Its errors wrap the streamauth sentinels, so the stream's 401
// names why (missing_token, token_expired, invalid_token).
func (a bearerAuth) Authenticate(r *http.Request) (hardening.Caller, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return hardening.Caller{}, streamauth.ErrNoCredentials
	}
	var c claims
	_, err := jwt.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return a.secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return hardening.Caller{}, streamauth.ErrTokenExpired
	case err != nil || c.Subject == "" || c.Org == "":
		return hardening.Caller{}, streamauth.ErrInvalidToken
	}
	caller := hardening.Caller{Subject: c.Subject, Tenant: c.Org, Roles: c.Roles, ExpiresAt: c.ExpiresAt.Time}
	if c.IssuedAt != nil {
		caller.IssuedAt = c.IssuedAt.Time
	}
	return caller, nil
}

// sign returns a token for sub in org, valid for ttl from now.
func sign(secret []byte, sub, org string, admin bool, ttl time.Duration, now time.Time) (string, error) {
	c := claims{Org: org, RegisteredClaims: jwt.RegisteredClaims{Subject: sub,
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl))}}
	if admin {
		c.Roles = []string{"admin"}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// runToken is "orders token -sub alice -org acme [-admin] [-ttl 1h]": it
// prints a token signed with ORDERS_AUTH_SECRET.
func runToken(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	sub := fs.String("sub", "", "subject (user id), required")
	org := fs.String("org", "", "organisation (tenant), required")
	admin := fs.Bool("admin", false, "grant the admin role")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" || *org == "" || *ttl <= 0 {
		return fmt.Errorf("token: -sub and -org are required and -ttl must be positive")
	}
	secret, err := loadSecret(getenv)
	if err != nil {
		return err
	}
	tok, err := sign(secret, *sub, *org, *admin, *ttl, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
