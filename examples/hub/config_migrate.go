package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/systembuilderhub/hardening/migrate"
)

// The migration policy of the hub's environment. Package migrate reads no
// environment; migrationPolicyFromEnv turns it into a migrate.Policy, with
// errors naming the variable.

// Environment variables of the startup check.
const (
	envCheckOnStartup      = "MIGRATIONS_CHECK_ON_STARTUP" // Policy.DisableCheck, inverted
	envCheckOnStartupAlias = "ALEMBIC_CHECK_ON_STARTUP"    // old name, read when the first is unset
	envAutoApply           = "MIGRATIONS_AUTO_APPLY"       // Policy.DisableAutoApply, inverted
	envStrictDBStartup     = "STRICT_DB_STARTUP"           // Policy.Strict
)

// hubUpCommand is the command the remediation text names.
const hubUpCommand = "go run ./examples/hub migrate up"

// migrationPolicyFromEnv starts from migrate.DefaultPolicy (check on,
// auto-apply on, lenient) and applies the variables above. A value that
// does not parse as a boolean is an error naming the variable; an unset or
// blank one keeps the default. MIGRATIONS_CHECK_ON_STARTUP wins over its
// alias.
func migrationPolicyFromEnv() (migrate.Policy, error) {
	p := migrate.DefaultPolicy()
	p.UpCommand = hubUpCommand
	for _, v := range []struct {
		names  []string
		dst    *bool
		invert bool // the variable enables what the field disables
	}{
		{[]string{envCheckOnStartup, envCheckOnStartupAlias}, &p.DisableCheck, true},
		{[]string{envAutoApply}, &p.DisableAutoApply, true},
		{[]string{envStrictDBStartup}, &p.Strict, false},
	} {
		for _, name := range v.names {
			raw := strings.TrimSpace(os.Getenv(name))
			if raw == "" {
				continue
			}
			b, err := strconv.ParseBool(raw)
			if err != nil {
				return migrate.Policy{}, fmt.Errorf("%s=%q: want true or false", name, os.Getenv(name))
			}
			*v.dst = b != v.invert
			break
		}
	}
	return p, nil
}
