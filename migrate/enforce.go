package migrate

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Policy is the startup check Enforce applies. The zero value checks
// nothing; DefaultPolicy and PolicyFromEnv give the documented defaults.
type Policy struct {
	// CheckOnStartup turns the check on (env MIGRATIONS_CHECK_ON_STARTUP,
	// alias ALEMBIC_CHECK_ON_STARTUP; default true).
	CheckOnStartup bool
	// AutoApply applies pending migrations before checking (env
	// MIGRATIONS_AUTO_APPLY; default true).
	AutoApply bool
	// Strict makes any pending, unknown or changed migration an error, so
	// the service refuses to start (env STRICT_DB_STARTUP; default false).
	// Lenient mode logs the same remediation at warn level and lets the
	// service start degraded; ReadinessHandler then answers 503.
	Strict bool
	// UpCommand is the command named in remediation text, for example
	// "go run ./examples/hub migrate up".
	UpCommand string
}

// DefaultPolicy returns the defaults: check on, auto-apply on, lenient.
func DefaultPolicy() Policy { return Policy{CheckOnStartup: true, AutoApply: true} }

// Environment variables read by PolicyFromEnv.
const (
	EnvCheckOnStartup      = "MIGRATIONS_CHECK_ON_STARTUP"
	EnvCheckOnStartupAlias = "ALEMBIC_CHECK_ON_STARTUP"
	EnvAutoApply           = "MIGRATIONS_AUTO_APPLY"
	EnvStrict              = "STRICT_DB_STARTUP"
)

// PolicyFromEnv starts from DefaultPolicy and applies the environment
// variables above. A value that does not parse as a boolean is an error
// naming the variable. MIGRATIONS_CHECK_ON_STARTUP wins over its alias.
func PolicyFromEnv() (Policy, error) {
	p := DefaultPolicy()
	for _, v := range []struct {
		names []string
		dst   *bool
	}{
		{[]string{EnvCheckOnStartup, EnvCheckOnStartupAlias}, &p.CheckOnStartup},
		{[]string{EnvAutoApply}, &p.AutoApply},
		{[]string{EnvStrict}, &p.Strict},
	} {
		for _, name := range v.names {
			raw, ok := os.LookupEnv(name)
			if !ok || strings.TrimSpace(raw) == "" {
				continue
			}
			b, err := strconv.ParseBool(strings.TrimSpace(raw))
			if err != nil {
				return Policy{}, fmt.Errorf("migrate: %s=%q: want true or false", name, raw)
			}
			*v.dst = b
			break
		}
	}
	return p, nil
}

// Enforce is the startup check. With CheckOnStartup off it does nothing.
// Otherwise it applies pending migrations when AutoApply is set, then
// checks the status: at head it returns nil; in Strict mode anything else
// is a *SchemaError whose text names the versions and the command to run;
// in lenient mode the same text is logged at warn level and Enforce returns
// the status with a nil error. A database that cannot be read is always an
// error.
func (m *Migrator) Enforce(ctx context.Context, p Policy) (Status, error) {
	if !p.CheckOnStartup {
		return Status{}, nil
	}
	st, err := m.Status(ctx)
	if err != nil {
		return Status{}, err
	}
	if p.AutoApply && st.Reason() == ReasonPending {
		if _, err := m.Up(ctx); err != nil {
			if p.Strict {
				return st, fmt.Errorf("migrate: auto-apply failed: %w", err)
			}
			m.log.WarnContext(ctx, "migrate: auto-apply failed; starting degraded", "err", err)
		}
		if st, err = m.Status(ctx); err != nil {
			return Status{}, err
		}
	}
	if st.AtHead() {
		return st, nil
	}
	serr := st.Err(p.UpCommand)
	if p.Strict {
		return st, serr
	}
	m.log.WarnContext(ctx, "database schema is not at head; starting degraded (set STRICT_DB_STARTUP=true to refuse)",
		"reason", st.Reason(), "remediation", st.Remediation(p.UpCommand))
	return st, nil
}
