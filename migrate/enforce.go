package migrate

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Policy is the startup check Enforce applies. The zero value is the
// documented default: check on startup, apply pending migrations, lenient.
// Each field turns one default off (or strict mode on), so a literal such as
// Policy{Strict: true} keeps the other defaults.
type Policy struct {
	// DisableCheck turns the startup check off, so Enforce does nothing (env
	// MIGRATIONS_CHECK_ON_STARTUP=false, alias ALEMBIC_CHECK_ON_STARTUP;
	// default false: the check runs).
	DisableCheck bool
	// DisableAutoApply leaves pending migrations for an operator to apply
	// (env MIGRATIONS_AUTO_APPLY=false; default false: Enforce applies
	// them before checking).
	DisableAutoApply bool
	// Strict makes any pending, unknown or changed migration an error, so
	// the service refuses to start (env STRICT_DB_STARTUP; default false).
	// Lenient mode logs the same remediation at warn level and lets the
	// service start degraded; ReadinessHandler then answers 503.
	Strict bool
	// UpCommand is the command named in remediation text, for example
	// "go run ./examples/hub migrate up".
	UpCommand string
}

// DefaultPolicy returns the defaults: check on, auto-apply on, lenient. It
// is the zero Policy, named for readability at call sites.
func DefaultPolicy() Policy { return Policy{} }

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
		names  []string
		dst    *bool
		invert bool // the variable enables what the field disables
	}{
		{[]string{EnvCheckOnStartup, EnvCheckOnStartupAlias}, &p.DisableCheck, true},
		{[]string{EnvAutoApply}, &p.DisableAutoApply, true},
		{[]string{EnvStrict}, &p.Strict, false},
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
			*v.dst = b != v.invert
			break
		}
	}
	return p, nil
}

// Enforce is the startup check. With DisableCheck set it does nothing.
// Otherwise it applies pending migrations unless DisableAutoApply is set, then
// checks the status: at head it returns nil; in Strict mode anything else
// is a *SchemaError whose text names the versions and the command to run;
// in lenient mode the same text is logged at warn level and Enforce returns
// the status with a nil error. A database that cannot be read is always an
// error.
func (m *Migrator) Enforce(ctx context.Context, p Policy) (Status, error) {
	if p.DisableCheck {
		return Status{}, nil
	}
	st, err := m.Status(ctx)
	if err != nil {
		return Status{}, err
	}
	if !p.DisableAutoApply && st.Reason() == ReasonPending {
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
