package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Reason codes describe why a schema is not at head. They are also the
// "reason" member of /readyz problem responses.
const (
	ReasonPending          = "schema_pending"
	ReasonAhead            = "schema_ahead"
	ReasonChecksumMismatch = "checksum_mismatch"
	ReasonDBUnavailable    = "db_unavailable"
)

// SetStatus is the state of one migration set in the database.
type SetStatus struct {
	// Set is the set's name ("kit" for the kit's own migrations).
	Set string `json:"set"`
	// Current is the highest applied version (0 when none).
	Current int `json:"current"`
	// Target is the highest version this binary knows.
	Target int `json:"target"`
	// Pending are known migrations not yet applied, in apply order.
	Pending []Migration `json:"pending"`
	// Unknown are applied migrations this binary does not know: the
	// database is ahead of the code.
	Unknown []Applied `json:"unknown"`
	// Mismatched are applied migrations whose file changed since.
	Mismatched []Mismatch `json:"mismatched"`
}

// Status is the state of every set the Migrator knows, plus sets found in
// the database that it does not know.
type Status struct {
	Sets []SetStatus `json:"sets"`
}

// AtHead reports whether every set is fully applied with matching
// checksums and nothing unknown.
func (s Status) AtHead() bool { return s.Reason() == "" }

// Reason returns the most severe reason code, or "" at head.
func (s Status) Reason() string {
	var pending, ahead bool
	for _, st := range s.Sets {
		if len(st.Mismatched) > 0 {
			return ReasonChecksumMismatch
		}
		ahead = ahead || len(st.Unknown) > 0
		pending = pending || len(st.Pending) > 0
	}
	switch {
	case ahead:
		return ReasonAhead
	case pending:
		return ReasonPending
	}
	return ""
}

// Err returns nil at head, else a *SchemaError with the remediation text
// built for upCommand (see Remediation).
func (s Status) Err(upCommand string) error {
	if s.AtHead() {
		return nil
	}
	return &SchemaError{Status: s, Remediation: s.Remediation(upCommand)}
}

// Remediation explains, per set, what is wrong and how to fix it. upCommand
// is the command that applies migrations for this application (for the
// reference service: "go run ./examples/hub migrate up"); empty names
// migrate.Up.
func (s Status) Remediation(upCommand string) string {
	if upCommand == "" {
		upCommand = "call migrate.Up (or your service's migrate command)"
	}
	var b strings.Builder
	for _, st := range s.Sets {
		if len(st.Pending) > 0 {
			fmt.Fprintf(&b, "set %q: %d pending migration(s) %s (database at %d, binary at %d): run `%s`. ",
				st.Set, len(st.Pending), versionsOf(st.Pending), st.Current, st.Target, upCommand)
		}
		if len(st.Unknown) > 0 {
			vs := make([]string, len(st.Unknown))
			for i, a := range st.Unknown {
				vs[i] = fmt.Sprintf("%04d_%s", a.Version, a.Name)
			}
			fmt.Fprintf(&b, "set %q: the database has migration(s) %s that this binary does not know (database at %d, binary at %d): deploy the newer binary, or restore a backup taken before those migrations. ",
				st.Set, strings.Join(vs, ", "), st.Current, st.Target)
		}
		for _, mm := range st.Mismatched {
			fmt.Fprintf(&b, "set %q: migration %04d_%s was changed after it was applied (recorded sha256 %s, file sha256 %s): restore the original file and add a new migration for the change. ",
				st.Set, mm.Version, mm.Name, short(mm.Recorded), short(mm.Embedded))
		}
	}
	return strings.TrimSpace(b.String())
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

func versionsOf(ms []Migration) string {
	vs := make([]string, len(ms))
	for i, m := range ms {
		vs[i] = fmt.Sprintf("%04d_%s", m.Version, m.Name)
	}
	return strings.Join(vs, ", ")
}

// Sentinel errors wrapped by *SchemaError; test with errors.Is.
var (
	ErrPending          = errors.New("migrate: migrations pending")
	ErrAhead            = errors.New("migrate: database is ahead of this binary")
	ErrChecksumMismatch = errors.New("migrate: applied migration was changed")
)

// SchemaError reports a schema that is not at head, with remediation steps.
type SchemaError struct {
	Status      Status
	Remediation string
}

// Error implements error.
func (e *SchemaError) Error() string {
	return "migrate: schema not at head (" + e.Status.Reason() + "): " + e.Remediation
}

// Unwrap returns the sentinels that apply (ErrPending, ErrAhead,
// ErrChecksumMismatch).
func (e *SchemaError) Unwrap() []error {
	var errs []error
	for _, st := range e.Status.Sets {
		if len(st.Pending) > 0 && !slices.Contains(errs, ErrPending) {
			errs = append(errs, ErrPending)
		}
		if len(st.Unknown) > 0 && !slices.Contains(errs, ErrAhead) {
			errs = append(errs, ErrAhead)
		}
		if len(st.Mismatched) > 0 && !slices.Contains(errs, ErrChecksumMismatch) {
			errs = append(errs, ErrChecksumMismatch)
		}
	}
	return errs
}

// Status reports, for every set, the current and target versions, pending
// migrations, applied-but-unknown migrations and checksum mismatches. It
// takes no lock and writes nothing; a database never migrated reports
// everything pending.
func (m *Migrator) Status(ctx context.Context) (Status, error) {
	applied, err := m.readApplied(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("migrate: read applied migrations: %w", err)
	}
	return m.status(applied), nil
}

// status compares the applied migrations with the loaded sets.
func (m *Migrator) status(applied map[string][]Applied) Status {
	var st Status
	known := map[string]bool{}
	for i, migs := range m.loaded {
		name := m.sets[i].Name
		known[name] = true
		ss := SetStatus{Set: name}
		byVersion := map[int]Applied{}
		for _, a := range applied[name] {
			byVersion[a.Version] = a
			ss.Current = max(ss.Current, a.Version)
		}
		knownV := map[int]bool{}
		for _, mig := range migs {
			knownV[mig.Version] = true
			ss.Target = max(ss.Target, mig.Version)
			a, ok := byVersion[mig.Version]
			switch {
			case !ok:
				ss.Pending = append(ss.Pending, mig)
			case a.Checksum != mig.Checksum:
				ss.Mismatched = append(ss.Mismatched, Mismatch{Version: mig.Version, Name: mig.Name, Recorded: a.Checksum, Embedded: mig.Checksum})
			}
		}
		for _, a := range applied[name] {
			if !knownV[a.Version] {
				ss.Unknown = append(ss.Unknown, a)
			}
		}
		st.Sets = append(st.Sets, ss)
	}
	// Sets recorded in the database that no registered set matches are
	// reported as unknown too: the database belongs to a newer binary.
	for name, as := range applied {
		if known[name] {
			continue
		}
		ss := SetStatus{Set: name, Unknown: as}
		for _, a := range as {
			ss.Current = max(ss.Current, a.Version)
		}
		st.Sets = append(st.Sets, ss)
	}
	return st
}

// String renders the status as a short human-readable table, one line per
// set, for command-line tools.
func (s Status) String() string {
	var b strings.Builder
	for _, st := range s.Sets {
		state := "at head"
		switch {
		case len(st.Mismatched) > 0:
			state = "CHECKSUM MISMATCH"
		case len(st.Unknown) > 0:
			state = "AHEAD of this binary"
		case len(st.Pending) > 0:
			state = strconv.Itoa(len(st.Pending)) + " pending"
		}
		fmt.Fprintf(&b, "%-10s current=%d target=%d %s\n", st.Set, st.Current, st.Target, state)
		for _, p := range st.Pending {
			fmt.Fprintf(&b, "  pending %04d_%s\n", p.Version, p.Name)
		}
		for _, u := range st.Unknown {
			fmt.Fprintf(&b, "  unknown %04d_%s (applied %s)\n", u.Version, u.Name, u.AppliedAt.Format("2006-01-02T15:04:05Z07:00"))
		}
		for _, mm := range st.Mismatched {
			fmt.Fprintf(&b, "  changed %04d_%s\n", mm.Version, mm.Name)
		}
	}
	return b.String()
}
