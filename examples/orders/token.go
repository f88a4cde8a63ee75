package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// sign returns an HS256 token for sub in org, valid for ttl from now, with
// the claims the service reads: sub, org (the tenant), roles, iat, exp.
// (streamauth's Sign writes the tenant as "tid".)
func sign(secret []byte, sub, org string, admin bool, ttl time.Duration) (string, error) {
	now := time.Now()
	c := jwt.MapClaims{"sub": sub, "org": org, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	if admin {
		c["roles"] = []string{"admin"}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// tokenArgs are the flags of "orders token".
type tokenArgs struct {
	sub, org string
	admin    bool
	ttl      time.Duration
}

func (t *tokenArgs) flags(out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&t.sub, "sub", "", "subject (user id), required")
	fs.StringVar(&t.org, "org", "", "organisation (tenant), required")
	fs.BoolVar(&t.admin, "admin", false, "grant the admin role")
	fs.DurationVar(&t.ttl, "ttl", time.Hour, "lifetime")
	return fs
}

// runToken is "orders token -sub alice -org acme [-admin] [-ttl 1h]": it
// prints a token signed with ORDERS_AUTH_SECRET.
func runToken(args []string, getenv func(string) string, stdout io.Writer) error {
	var t tokenArgs
	if err := t.flags(io.Discard).Parse(args); err != nil {
		return fmt.Errorf("token: %w (run 'orders help')", err)
	}
	if t.sub == "" || t.org == "" || t.ttl <= 0 {
		return fmt.Errorf("token: -sub and -org are required and -ttl must be positive")
	}
	secret, err := checkSecret(getenv("ORDERS_AUTH_SECRET"))
	if err != nil {
		return err
	}
	tok, err := sign(secret, t.sub, t.org, t.admin, t.ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// logDevTokens logs a token of alice, a user of acme, and of root, an admin
// of acme, valid for an hour, when the secret is this process's own.
func logDevTokens(log *slog.Logger, secret []byte) error {
	log.Warn("ORDERS_AUTH_SECRET is not set: tokens are signed with a random secret of this process; " +
		"set it to use `go run ./examples/orders token`")
	for _, admin := range []bool{false, true} {
		sub := map[bool]string{false: "alice", true: "root"}[admin]
		tok, err := sign(secret, sub, "acme", admin, time.Hour)
		if err != nil {
			return err
		}
		log.Info("development token", "sub", sub, "org", "acme", "admin", admin, "ttl", "1h", "token", tok)
	}
	return nil
}
