// Package migrate ships the kit's database schema as embedded, numbered SQL
// migrations and the small runner that applies them.
//
// It exists so that users of the kit do not inherit a migration tool's
// driver graph. Migrations are SQL files named NNNN_description.sql, one
// directory per dialect (only "sqlite" today; the dialect is a parameter so
// that "postgres" can follow). Each migration is applied in its own
// transaction and recorded in the hardening_schema_migrations table with its
// SHA-256 checksum and applied_at time. Applications register their own
// migration sets beside the kit's with WithSet; each set is tracked
// separately, and one Status or Enforce call covers them all.
//
// Up applies pending migrations under a lock held in the database, so two
// processes starting together apply each migration exactly once. Status
// takes no lock. Enforce is the startup check (see Policy), and
// ReadinessHandler serves /readyz from the same verdict.
//
// The package reads no environment: the application builds the Policy
// from its own configuration (the reference service maps
// MIGRATIONS_CHECK_ON_STARTUP, MIGRATIONS_AUTO_APPLY and STRICT_DB_STARTUP
// to its fields). New takes Options and ReadinessHandler takes
// ReadinessOptions; both report invalid values as errors. When the service
// is not ready, the readiness handler passes a *NotReadyError (a
// hardening.Error) to its error handler, hardening.WriteError unless
// WithErrorHandler replaces it.
//
// Rules for migration authors: never edit a migration once it has been
// applied anywhere (the checksum check will flag it); add a new one. Do not
// put BEGIN/COMMIT in a file: the runner owns the transaction.
package migrate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/internal/sqlitex"
)

//go:embed sql
var kitFS embed.FS

// Dialect names a SQL dialect; it selects the kit's migration directory and
// the runner's locking and bookkeeping statements.
type Dialect string

// SQLite is the dialect of mattn/go-sqlite3 databases.
const SQLite Dialect = "sqlite"

// KitSetName is the set name under which the kit's own migrations are
// recorded.
const KitSetName = "kit"

// Migration is one numbered SQL file of a set.
type Migration struct {
	Set      string `json:"set"`
	Version  int    `json:"version"`
	Name     string `json:"name"`
	Checksum string `json:"checksum"`
	sql      string
}

// Applied is a migration as recorded in the database.
type Applied struct {
	Set       string    `json:"set"`
	Version   int       `json:"version"`
	Name      string    `json:"name"`
	Checksum  string    `json:"checksum"`
	AppliedAt time.Time `json:"applied_at"`
	appliedAt string
}

// Mismatch is an applied migration whose file content changed since.
type Mismatch struct {
	Version  int    `json:"version"`
	Name     string `json:"name"`
	Recorded string `json:"recorded_checksum"`
	Embedded string `json:"embedded_checksum"`
}

// Set is a named collection of migrations. FS holds the NNNN_name.sql files
// at its root; other files are ignored.
type Set struct {
	Name string
	FS   fs.FS
}

// Migrator applies and checks migrations on one database.
type Migrator struct {
	db *sqlx.DB
	config

	loaded [][]Migration // per set, ascending
}

var fileRE = regexp.MustCompile(`^(\d{1,9})_([A-Za-z0-9_\-]+)\.sql$`)

// ErrInvalidMigrations is wrapped by New when a set cannot be loaded: a
// malformed file name, a duplicate version or set name, an unknown dialect,
// a set with no migration files at its root.
var ErrInvalidMigrations = errors.New("migrate: invalid migration set")

// New returns a Migrator for db. It loads and validates every set up front,
// and reports invalid options (a nil clock, a lock TTL that is not
// positive). A nil Option is ignored.
func New(db *sqlx.DB, opts ...Option) (*Migrator, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil database", ErrInvalidMigrations)
	}
	c := config{dialect: SQLite, now: time.Now, lockTTL: 10 * time.Minute}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.now == nil {
		return nil, errors.New("migrate: WithClock: nil clock")
	}
	if c.lockTTL <= 0 {
		return nil, fmt.Errorf("migrate: WithLockTTL(%s): want a positive duration", c.lockTTL)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	m := &Migrator{db: db, config: c}
	if m.dialect != SQLite {
		return nil, fmt.Errorf("%w: unsupported dialect %q", ErrInvalidMigrations, m.dialect)
	}
	sets := m.sets
	if !m.noKit {
		kit, err := KitMigrations(m.dialect)
		if err != nil {
			return nil, err
		}
		sets = append([]Set{{Name: KitSetName, FS: kit}}, sets...)
	}
	m.sets = sets
	seen := map[string]bool{}
	for i, s := range sets {
		if s.Name == "" || (s.Name == KitSetName && (i != 0 || m.noKit)) || seen[s.Name] {
			return nil, fmt.Errorf("%w: set name %q empty, reserved or duplicated", ErrInvalidMigrations, s.Name)
		}
		seen[s.Name] = true
		migs, err := load(s)
		if err != nil {
			return nil, err
		}
		m.loaded = append(m.loaded, migs)
	}
	return m, nil
}

// KitMigrations returns the kit's embedded migrations for dialect d.
func KitMigrations(d Dialect) (fs.FS, error) {
	sub, err := fs.Sub(kitFS, path.Join("sql", string(d)))
	if err != nil {
		return nil, fmt.Errorf("%w: dialect %q: %v", ErrInvalidMigrations, d, err)
	}
	if _, err := fs.ReadDir(sub, "."); err != nil {
		return nil, fmt.Errorf("%w: no kit migrations for dialect %q", ErrInvalidMigrations, d)
	}
	return sub, nil
}

func load(s Set) ([]Migration, error) {
	if s.FS == nil {
		return nil, fmt.Errorf("%w: set %q has no fs.FS", ErrInvalidMigrations, s.Name)
	}
	entries, err := fs.ReadDir(s.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("%w: set %q: %v", ErrInvalidMigrations, s.Name, err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		mm := fileRE.FindStringSubmatch(e.Name())
		if mm == nil {
			return nil, fmt.Errorf("%w: set %q: file %q is not named NNNN_description.sql", ErrInvalidMigrations, s.Name, e.Name())
		}
		v, _ := strconv.Atoi(mm[1])
		if v <= 0 {
			return nil, fmt.Errorf("%w: set %q: file %q: versions start at 1", ErrInvalidMigrations, s.Name, e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("%w: set %q: version %d in both %q and %q", ErrInvalidMigrations, s.Name, v, prev, e.Name())
		}
		seen[v] = e.Name()
		body, err := fs.ReadFile(s.FS, e.Name())
		if err != nil {
			return nil, fmt.Errorf("%w: set %q: %v", ErrInvalidMigrations, s.Name, err)
		}
		sum := sha256.Sum256(body)
		out = append(out, Migration{Set: s.Name, Version: v, Name: mm[2], Checksum: hex.EncodeToString(sum[:]), sql: string(body)})
	}
	if len(out) == 0 {
		return nil, emptySetError(s.Name, entries)
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	return out, nil
}

// emptySetError explains a set with no migration files at its root. The
// usual cause is a //go:embed directory passed without fs.Sub, which puts
// the files one level down, so the error names the directory to Sub into.
func emptySetError(name string, entries []fs.DirEntry) error {
	for _, e := range entries {
		if e.IsDir() {
			return fmt.Errorf("%w: set %q has no NNNN_description.sql files at its root but a directory %q: "+
				"a //go:embed FS keeps the directory, so pass fs.Sub(fsys, %q)", ErrInvalidMigrations, name, e.Name(), e.Name())
		}
	}
	return fmt.Errorf("%w: set %q has no NNNN_description.sql files at its root "+
		"(with //go:embed, pass fs.Sub(fsys, \"dir\") so the files sit at the root)", ErrInvalidMigrations, name)
}

// Migrations returns every known migration of every set, in apply order.
func (m *Migrator) Migrations() []Migration {
	var out []Migration
	for _, migs := range m.loaded {
		out = append(out, migs...)
	}
	return out
}

const (
	versionsTable = "hardening_schema_migrations"
	lockTable     = "hardening_schema_lock"
)

const bootstrapSQLite = `
CREATE TABLE IF NOT EXISTS hardening_schema_migrations (
	set_name   TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	name       TEXT    NOT NULL,
	checksum   TEXT    NOT NULL,
	applied_at TEXT    NOT NULL,
	PRIMARY KEY (set_name, version)
);
CREATE TABLE IF NOT EXISTS hardening_schema_lock (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	owner       TEXT NOT NULL,
	acquired_at TEXT NOT NULL,
	expires_at  TEXT NOT NULL
);`

// queryer is what a write transaction offers to the runner.
type queryer interface {
	sqlx.ExecerContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

func (m *Migrator) writeTx(ctx context.Context, fn func(q queryer) error) error {
	return sqlitex.Immediate(ctx, m.db, func(c *sqlx.Conn) error { return fn(c) })
}

func (m *Migrator) applied(ctx context.Context) (map[string][]Applied, error) {
	var n int
	if err := m.db.GetContext(ctx, &n, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, versionsTable); err != nil {
		return nil, err
	}
	out := map[string][]Applied{}
	if n == 0 {
		return out, nil
	}
	rows, err := m.db.QueryContext(ctx, `SELECT set_name, version, name, checksum, applied_at FROM `+versionsTable+` ORDER BY set_name, version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var a Applied
		if err := rows.Scan(&a.Set, &a.Version, &a.Name, &a.Checksum, &a.appliedAt); err != nil {
			return nil, err
		}
		a.AppliedAt, _ = time.Parse(time.RFC3339Nano, a.appliedAt)
		out[a.Set] = append(out[a.Set], a)
	}
	return out, rows.Err()
}

// Up applies every pending migration of every set, each in its own
// transaction, while holding the database's migration lock. It refuses to
// run when an applied migration's checksum no longer matches its file. It
// returns the migrations this call applied (none when another process got
// there first).
func (m *Migrator) Up(ctx context.Context) ([]Migration, error) {
	if err := m.writeTx(ctx, func(q queryer) error {
		_, err := q.ExecContext(ctx, bootstrapSQLite)
		return err
	}); err != nil {
		return nil, fmt.Errorf("migrate: create bookkeeping tables: %w", err)
	}
	owner, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer m.unlock(context.WithoutCancel(ctx), owner)

	st, err := m.Status(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range st.Sets {
		if len(s.Mismatched) > 0 {
			return nil, &SchemaError{Status: st, Remediation: st.Remediation("")}
		}
	}
	var done []Migration
	for _, s := range st.Sets {
		for _, mig := range s.Pending {
			applied, err := m.apply(ctx, owner, mig)
			if err != nil {
				return done, err
			}
			if applied {
				done = append(done, mig)
			}
		}
	}
	return done, nil
}

func (m *Migrator) apply(ctx context.Context, owner string, mig Migration) (bool, error) {
	start := time.Now()
	applied := false
	err := m.writeTx(ctx, func(q queryer) error {
		// The lock must still be ours: a holder that stalled past the TTL
		// must not apply anything after another process took over.
		var holder string
		if err := q.GetContext(ctx, &holder, `SELECT owner FROM `+lockTable+` WHERE id = 1`); err != nil || holder != owner {
			return fmt.Errorf("migrate: lost the migration lock before %s/%04d", mig.Set, mig.Version)
		}
		var n int
		if err := q.GetContext(ctx, &n, `SELECT count(*) FROM `+versionsTable+` WHERE set_name = ? AND version = ?`, mig.Set, mig.Version); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if _, err := q.ExecContext(ctx, mig.sql); err != nil {
			return fmt.Errorf("migrate: apply %s/%04d_%s: %w", mig.Set, mig.Version, mig.Name, err)
		}
		now := m.now().UTC()
		if _, err := q.ExecContext(ctx, `INSERT INTO `+versionsTable+` (set_name, version, name, checksum, applied_at) VALUES (?, ?, ?, ?, ?)`,
			mig.Set, mig.Version, mig.Name, mig.Checksum, now.Format(time.RFC3339Nano)); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, `UPDATE `+lockTable+` SET expires_at = ? WHERE id = 1 AND owner = ?`,
			now.Add(m.lockTTL).Format(time.RFC3339Nano), owner)
		applied = true
		return err
	})
	if err != nil {
		return false, err
	}
	if applied {
		m.log.InfoContext(ctx, "migration applied", "set", mig.Set, "version", mig.Version, "name", mig.Name, "duration", time.Since(start))
	}
	return applied, nil
}

// ErrLockTimeout is returned by Up when ctx ends while waiting for another
// process's migration lock.
var ErrLockTimeout = errors.New("migrate: timed out waiting for the migration lock")

func (m *Migrator) lock(ctx context.Context) (string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	owner := hex.EncodeToString(b[:])
	wait := 20 * time.Millisecond
	for {
		got := false
		err := m.writeTx(ctx, func(q queryer) error {
			now := m.now().UTC()
			if _, err := q.ExecContext(ctx, `DELETE FROM `+lockTable+` WHERE id = 1 AND expires_at < ?`, now.Format(time.RFC3339Nano)); err != nil {
				return err
			}
			res, err := q.ExecContext(ctx, `INSERT OR IGNORE INTO `+lockTable+` (id, owner, acquired_at, expires_at) VALUES (1, ?, ?, ?)`,
				owner, now.Format(time.RFC3339Nano), now.Add(m.lockTTL).Format(time.RFC3339Nano))
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			got = n == 1
			return err
		})
		if err != nil {
			return "", fmt.Errorf("migrate: take lock: %w", err)
		}
		if got {
			return owner, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("%w: %w", ErrLockTimeout, ctx.Err())
		case <-t.C:
		}
		if wait < 500*time.Millisecond {
			wait *= 2
		}
	}
}

func (m *Migrator) unlock(ctx context.Context, owner string) {
	if err := m.writeTx(ctx, func(q queryer) error {
		_, err := q.ExecContext(ctx, `DELETE FROM `+lockTable+` WHERE id = 1 AND owner = ?`, owner)
		return err
	}); err != nil {
		m.log.WarnContext(ctx, "migrate: release lock", "err", err)
	}
}
