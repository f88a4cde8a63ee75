package migrate

import (
	"context"
	"fmt"
)

// Policy is the startup check Enforce applies. The zero value is the
// documented default: check on startup, apply pending migrations, lenient.
// Each field turns one default off (or strict mode on), so a literal such as
// Policy{Strict: true} keeps the other defaults.
type Policy struct {
	// DisableCheck turns the startup check off, so Enforce does nothing
	// (default false: the check runs).
	DisableCheck bool
	// DisableAutoApply leaves pending migrations for an operator to apply
	// (default false: Enforce applies them before checking).
	DisableAutoApply bool
	// Strict makes any pending, unknown or changed migration an error, so
	// the service refuses to start (default false).
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
	m.log.WarnContext(ctx, "database schema is not at head; starting degraded (Policy.Strict refuses instead)",
		"reason", st.Reason(), "remediation", st.Remediation(p.UpCommand))
	return st, nil
}
