package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/migrate"
)

//go:embed migrations/*.sql migrations_postgres/*.sql
var hubMigrationsFS embed.FS

// hubMigrations is the hub's own migration set for db's dialect
// (migrations/ on SQLite, migrations_postgres/ on Postgres), registered
// beside the kit's.
func hubMigrations(db *sqlx.DB) fs.FS {
	dir := "migrations"
	if db.DriverName() == "pgx" {
		dir = "migrations_postgres"
	}
	sub, err := fs.Sub(hubMigrationsFS, dir)
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return sub
}

// app is the reference service: configuration, backends, and the features
// composed on them.
type app struct {
	cfg      config
	env      featureEnv
	log      *slog.Logger
	db       *sqlx.DB
	rdb      redis.UniversalClient // nil: every store uses SQLite
	reg      *prometheus.Registry
	now      func() time.Time
	auth     *authenticator
	migrator *migrate.Migrator
	schema   migrate.Status
	ready    http.Handler // GET /readyz (see readiness)

	// late is set while the schema is pending: the features are set up
	// once it reaches head (see pending.go).
	late *lateStart

	eventSinks []func(tenantID, eventType string, data any)

	// Feature state, each set once by its setup<Feature> before the
	// handler is built and read-only afterwards; nil when not set up.
	egressFeature       *egressState
	idempotencyFeature  *idempotency.Middleware
	echoDelay           time.Duration // HUB_ECHO_DELAY
	tenancyFeature      *tenancyHub
	previewTokenFeature *previewTokens
	streamsFeature      *hubStreams
	flagsFeature        *flags.Client

	closeMu sync.Mutex
	closers []func(context.Context) error
}

// migratorFor returns the migrator for the kit's and the hub's sets.
func migratorFor(db *sqlx.DB, log *slog.Logger) (*migrate.Migrator, error) {
	return migrate.New(db, migrate.WithSet("hub", hubMigrations(db)), migrate.WithLogger(log))
}

// openDatabase opens DATABASE_URL: the SQLite file, or the Postgres
// database (checked to answer). Errors name DATABASE_URL.
func openDatabase(ctx context.Context, cfg config) (*sqlx.DB, error) {
	if cfg.DBPath == "" && isPostgresURL(cfg.DatabaseURL) {
		return openPostgres(ctx, cfg.DatabaseURL)
	}
	db, err := migrate.OpenSQLite(ctx, cfg.DBPath, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL=%s: %w", cfg.DatabaseURL, err)
	}
	return db, nil
}

// openDB opens the database and runs the startup check. Without
// HUB_AUTH_SECRET the database holds the development signing secret, so a
// SQLite file must not be readable by other users (checkPrivateDB); on
// Postgres the server's roles guard it.
func openDB(ctx context.Context, cfg config, log *slog.Logger) (*sqlx.DB, *migrate.Migrator, migrate.Status, error) {
	if len(cfg.AuthSecret) == 0 && cfg.DBPath != "" {
		if err := checkPrivateDB(cfg.DBPath); err != nil {
			return nil, nil, migrate.Status{}, err
		}
	}
	db, err := openDatabase(ctx, cfg)
	if err != nil {
		return nil, nil, migrate.Status{}, err
	}
	m, err := migratorFor(db, log)
	if err != nil {
		_ = db.Close()
		return nil, nil, migrate.Status{}, err
	}
	st, err := m.Enforce(ctx, cfg.Migrations)
	if err != nil {
		_ = db.Close()
		return nil, nil, st, err
	}
	return db, m, st, nil
}

// newApp reads the features' environment and connects to Redis (so a
// configuration error is reported before anything is written to disk),
// opens the database, runs the startup check, and sets up every feature.
// When the check leaves migrations pending (lenient mode), the features
// wait for the schema instead: see pending.go. Close releases everything.
func newApp(ctx context.Context, cfg config, log *slog.Logger) (*app, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &app{cfg: cfg, log: log, now: time.Now, reg: prometheus.NewRegistry()}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := a.open(ctx); err != nil {
		_ = a.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	if a.schema.Reason() == migrate.ReasonPending {
		if err := a.awaitSchema(ctx); err != nil {
			_ = a.Close(context.WithoutCancel(ctx))
			return nil, err
		}
		return a, nil
	}
	var err error
	if a.ready, err = a.readiness(nil); err != nil {
		_ = a.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	if err := a.setup(ctx); err != nil {
		_ = a.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return a, nil
}

// open does what needs no schema: the environment and the egress policy
// (configuration only), Redis, then the database and its startup check.
func (a *app) open(ctx context.Context) error {
	var err error
	if a.env, err = featureEnvFromEnv(); err != nil {
		return err
	}
	if err := a.setupEgress(ctx); err != nil {
		return err
	}
	if err := a.connectRedis(ctx); err != nil {
		return err
	}
	db, m, st, err := openDB(ctx, a.cfg, a.log)
	if err != nil {
		return err
	}
	a.db, a.migrator, a.schema = db, m, st
	a.onClose(func(context.Context) error { return db.Close() })
	return nil
}

// connectRedis connects to REDIS_URL, when set, and checks that it answers.
func (a *app) connectRedis(ctx context.Context) error {
	if a.cfg.RedisURL == "" {
		return nil
	}
	opt, err := redis.ParseURL(a.cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(opt)
	a.onClose(func(context.Context) error { return rdb.Close() })
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		return fmt.Errorf("REDIS_URL: redis does not answer: %w", err)
	}
	a.rdb = rdb
	return nil
}

// setup sets up what needs the schema: the development auth secret and
// every feature but egress.
func (a *app) setup(ctx context.Context) error {
	if len(a.cfg.AuthSecret) == 0 {
		secret, err := devAuthSecret(ctx, a.db)
		if err != nil {
			return err
		}
		a.cfg.AuthSecret = secret
		a.log.Warn("HUB_AUTH_SECRET is unset: using a development secret stored in the database; mint a token with `go run ./examples/hub token -sub alice -tenant acme` (same DATABASE_URL)")
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.auth = &authenticator{secret: a.cfg.AuthSecret, now: a.now, maxTTL: a.cfg.AuthMaxTTL}
	return a.setupFeatures(ctx)
}

// devAuthSecret returns the development signing secret kept in the hub's
// settings table, creating it on first use. Every process on the same
// database shares it, so `hub token` mints tokens the server accepts.
func devAuthSecret(ctx context.Context, db *sqlx.DB) ([]byte, error) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO hub_settings (key, value) VALUES ('dev_auth_secret', ?) ON CONFLICT (key) DO NOTHING`), hex.EncodeToString(b)); err != nil {
		return nil, fmt.Errorf("development auth secret: %w (set HUB_AUTH_SECRET, or let the hub apply its migrations)", err)
	}
	var v string
	if err := db.GetContext(ctx, &v, `SELECT value FROM hub_settings WHERE key = 'dev_auth_secret'`); err != nil {
		return nil, fmt.Errorf("development auth secret: %w", err)
	}
	return []byte(v), nil
}

// onClose registers shutdown work; Close runs it in reverse order.
func (a *app) onClose(fn func(context.Context) error) {
	a.closeMu.Lock()
	defer a.closeMu.Unlock()
	a.closers = append(a.closers, fn)
}

// Close stops background work and closes the backends.
func (a *app) Close(ctx context.Context) error {
	if a.late != nil {
		a.late.stop() // no feature setup runs while the backends close
	}
	a.closeMu.Lock()
	closers := a.closers
	a.closers = nil
	a.closeMu.Unlock()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// publish sends a tenant event to every registered sink (the live
// streams). tenantID "" means every tenant.
func (a *app) publish(tenantID, eventType string, data any) {
	for _, sink := range a.eventSinks {
		sink(tenantID, eventType, data)
	}
}

// previewRecord is a preview created through the API.
type previewRecord struct {
	ID           string    `json:"preview_id" db:"preview_id"`
	TenantID     string    `json:"tenant_id" db:"tenant_id"`
	SystemID     string    `json:"system_id" db:"system_id"`
	DevicePreset string    `json:"device_preset" db:"device_preset"`
	CreatedBy    string    `json:"created_by" db:"created_by"`
	CreatedAt    time.Time `json:"created_at" db:"-"`
}

// storableID reports whether id could name a stored record: valid UTF-8
// without NUL. Postgres refuses other text outright (an error, not "no
// rows"), and newID never makes one, so such an id is simply not found.
func storableID(id string) bool {
	return utf8.ValidString(id) && !strings.ContainsRune(id, 0)
}

// newID returns a random identifier with the given prefix.
func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func (a *app) createPreview(ctx context.Context, p previewRecord) error {
	_, err := a.db.ExecContext(ctx, a.db.Rebind(`INSERT INTO hub_previews (preview_id, tenant_id, system_id, device_preset, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
		p.ID, p.TenantID, p.SystemID, p.DevicePreset, p.CreatedBy, p.CreatedAt.UnixMilli())
	return err
}

// lookupPreview returns the preview with id; found is false when there is none.
func (a *app) lookupPreview(ctx context.Context, id string) (previewRecord, bool, error) {
	if !storableID(id) {
		return previewRecord{}, false, nil
	}
	var p previewRecord
	var created int64
	err := a.db.QueryRowxContext(ctx, a.db.Rebind(`SELECT preview_id, tenant_id, system_id, device_preset, created_by, created_at FROM hub_previews WHERE preview_id = ?`), id).
		Scan(&p.ID, &p.TenantID, &p.SystemID, &p.DevicePreset, &p.CreatedBy, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return previewRecord{}, false, nil
	}
	if err != nil {
		return previewRecord{}, false, err
	}
	p.CreatedAt = time.UnixMilli(created).UTC()
	return p, true, nil
}

// deletePreview removes the preview; deleted is false when it did not exist.
func (a *app) deletePreview(ctx context.Context, id string) (bool, error) {
	if !storableID(id) {
		return false, nil
	}
	res, err := a.db.ExecContext(ctx, a.db.Rebind(`DELETE FROM hub_previews WHERE preview_id = ?`), id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
