// Package migrate ships the kit's database schema as embedded, numbered SQL
// migrations and the small runner that applies them.
//
// It exists so that users of the kit do not inherit a migration tool's
// driver graph. Migrations are SQL files named NNNN_description.sql, one
// embedded directory per dialect (sql/sqlite, sql/postgres). Each
// migration is applied in its own transaction and recorded in the
// hardening_schema_migrations table with its SHA-256 checksum and
// applied_at time. Applications register their own migration sets beside
// the kit's with WithSet; each set is tracked separately, and one Status or
// Enforce call covers them all.
//
// Up applies pending migrations under a lock held in the database, so
// processes starting together apply each migration exactly once. Status
// takes no lock. Enforce is the startup check (see Policy), and
// ReadinessHandler serves /readyz from the same verdict.
//
// # Dialects
//
// The dialect follows the handle's driver name: "sqlite3" (mattn/go-sqlite3)
// is SQLite; "pgx" (github.com/jackc/pgx/v5/stdlib), "pgx/v5" and
// "postgres" are Postgres. WithDialect overrides it and is required for any
// other driver name. A *sql.DB becomes a handle with sqlx.NewDb(db, "pgx").
// This package imports no Postgres driver: the application does.
//
// On SQLite the lock is a row in hardening_schema_lock with an expiry
// (WithLockTTL), and each migration runs in a BEGIN IMMEDIATE transaction.
//
// On Postgres, Up takes one connection from the pool for its whole run and
// holds a session-level advisory lock on it (pg_advisory_lock semantics,
// polled with pg_try_advisory_lock so that ctx ends the wait with
// ErrLockTimeout). The key is derived from current_schema(), so runners on
// one schema exclude each other and those on other schemas of the same
// database do not. If the process dies, the server ends its session and
// releases the lock: no expiry to wait for. Each migration and its
// bookkeeping row are one transaction (Postgres DDL is transactional), so a
// failing migration leaves nothing behind; a file therefore cannot use
// statements that refuse to run in a transaction (CREATE INDEX
// CONCURRENTLY, ALTER TYPE ... ADD VALUE before Postgres 12). The
// bookkeeping table lives in current_schema(), beside the tables the
// migrations create; the search_path of the connection (for example
// ?search_path=app in a pgx URL) selects it.
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
)

//go:embed sql
var kitFS embed.FS

// Dialect names a SQL dialect; it selects the kit's migration directory and
// the runner's locking and bookkeeping statements.
type Dialect string

// The dialects the runner knows. New picks one from the handle's driver
// name unless WithDialect names it.
const (
	// SQLite is the dialect of mattn/go-sqlite3 databases (driver
	// "sqlite3").
	SQLite Dialect = "sqlite"
	// Postgres is the dialect of PostgreSQL databases, opened with
	// github.com/jackc/pgx/v5/stdlib (driver "pgx" or "pgx/v5") or
	// lib/pq (driver "postgres").
	Postgres Dialect = "postgres"
)

// driverDialects maps database/sql driver names to dialects.
var driverDialects = map[string]Dialect{
	"sqlite3":  SQLite,
	"pgx":      Postgres,
	"pgx/v5":   Postgres,
	"postgres": Postgres,
}

// dialectOf returns the dialect of db's driver.
func dialectOf(db *sqlx.DB) (Dialect, error) {
	if d, ok := driverDialects[db.DriverName()]; ok {
		return d, nil
	}
	return "", fmt.Errorf("%w: cannot tell the SQL dialect of driver %q: pass WithDialect(migrate.SQLite) or WithDialect(migrate.Postgres)",
		ErrInvalidMigrations, db.DriverName())
}

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
// positive). A nil Option is ignored. The dialect follows db's driver
// name ("sqlite3" is SQLite; "pgx", "pgx/v5" and "postgres" are Postgres);
// WithDialect overrides it, and is required for any other driver name.
func New(db *sqlx.DB, opts ...Option) (*Migrator, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil database", ErrInvalidMigrations)
	}
	c := config{now: time.Now, lockTTL: 10 * time.Minute}
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
	if c.dialect == "" {
		d, err := dialectOf(db)
		if err != nil {
			return nil, err
		}
		c.dialect = d
	}
	m := &Migrator{db: db, config: c}
	if m.dialect != SQLite && m.dialect != Postgres {
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

// Dialect returns the SQL dialect the Migrator speaks: the one WithDialect
// named, or else the one of the handle's driver.
func (m *Migrator) Dialect() Dialect { return m.dialect }

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

// session is Up's hold on the database for one run: the dialect's
// migration lock, and the reads and writes made under it.
type session interface {
	// applied reads the bookkeeping table (empty when it does not exist).
	applied(ctx context.Context) (map[string][]Applied, error)
	// apply runs mig and records it in one transaction; false when
	// another process had already recorded it.
	apply(ctx context.Context, mig Migration) (bool, error)
	// release gives the lock back; it logs rather than fails.
	release(ctx context.Context)
}

// begin creates the bookkeeping tables when absent and takes the lock.
func (m *Migrator) begin(ctx context.Context) (session, error) {
	if m.dialect == Postgres {
		return m.beginPostgres(ctx)
	}
	return m.beginSQLite(ctx)
}

// readApplied reads the bookkeeping table through the pool, taking no lock.
func (m *Migrator) readApplied(ctx context.Context) (map[string][]Applied, error) {
	if m.dialect == Postgres {
		return postgresApplied(ctx, m.db)
	}
	return m.sqliteApplied(ctx)
}

// Up applies every pending migration of every set, each in its own
// transaction, while holding the database's migration lock. It refuses to
// run when an applied migration's checksum no longer matches its file. It
// returns the migrations this call applied (none when another process got
// there first).
func (m *Migrator) Up(ctx context.Context) ([]Migration, error) {
	s, err := m.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer s.release(context.WithoutCancel(ctx))

	applied, err := s.applied(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: read applied migrations: %w", err)
	}
	st := m.status(applied)
	for _, s := range st.Sets {
		if len(s.Mismatched) > 0 {
			return nil, &SchemaError{Status: st, Remediation: st.Remediation("")}
		}
	}
	var done []Migration
	for _, set := range st.Sets {
		for _, mig := range set.Pending {
			start := time.Now()
			ok, err := s.apply(ctx, mig)
			if err != nil {
				return done, err
			}
			if ok {
				m.log.InfoContext(ctx, "migration applied", "set", mig.Set, "version", mig.Version, "name", mig.Name, "duration", time.Since(start))
				done = append(done, mig)
			}
		}
	}
	return done, nil
}

// ErrLockTimeout is returned by Up when ctx ends while waiting for another
// process's migration lock.
var ErrLockTimeout = errors.New("migrate: timed out waiting for the migration lock")
