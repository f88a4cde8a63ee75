package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/migrate"
)

// pgMigrations is an application set in Postgres SQL. 0001 sleeps a little
// so that concurrent runners overlap.
var pgMigrations = map[string]string{
	"0001_widgets.sql": "CREATE TABLE app_widgets (id bigserial PRIMARY KEY, name text NOT NULL);\nSELECT pg_sleep(0.05);",
	"0002_gadgets.sql": "CREATE TABLE app_gadgets (id bigint PRIMARY KEY);\nCREATE INDEX app_gadgets_made ON app_gadgets (id);",
}

func pgOpts(files map[string]string) []migrate.Option {
	return []migrate.Option{migrate.WithoutKitMigrations(), migrate.WithSet("app", appSet(files))}
}

func TestDialectFollowsDriver(t *testing.T) {
	for driver, want := range map[string]migrate.Dialect{
		"pgx": migrate.Postgres, "pgx/v5": migrate.Postgres, "postgres": migrate.Postgres, "sqlite3": migrate.SQLite,
	} {
		m, err := migrate.New(sqlx.NewDb(nil, driver), pgOpts(pgMigrations)...)
		require.NoError(t, err, driver)
		assert.Equal(t, want, m.Dialect(), driver)
	}
	_, err := migrate.New(sqlx.NewDb(nil, "mysql"), pgOpts(pgMigrations)...)
	require.ErrorIs(t, err, migrate.ErrInvalidMigrations)
	assert.Contains(t, err.Error(), `"mysql"`)
	assert.Contains(t, err.Error(), "WithDialect")

	m, err := migrate.New(sqlx.NewDb(nil, "mysql"), append(pgOpts(pgMigrations), migrate.WithDialect(migrate.Postgres))...)
	require.NoError(t, err)
	assert.Equal(t, migrate.Postgres, m.Dialect())
	m, err = migrate.New(sqlx.NewDb(nil, "pgx"), append(pgOpts(pgMigrations), migrate.WithDialect(migrate.SQLite))...)
	require.NoError(t, err)
	assert.Equal(t, migrate.SQLite, m.Dialect(), "WithDialect overrides the driver")
}

func TestPostgresUpAppliesSets(t *testing.T) {
	p := testenv.Postgres(t)
	ctx := context.Background()
	other := appSet(map[string]string{"0001_notes.sql": "CREATE TABLE other_notes (body text);"})
	m, err := migrate.New(p.DB, append(pgOpts(pgMigrations), migrate.WithSet("other", other))...)
	require.NoError(t, err)
	require.Equal(t, migrate.Postgres, m.Dialect())

	st, err := m.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, migrate.ReasonPending, st.Reason())
	require.Len(t, st.Sets, 2)
	assert.Equal(t, 2, st.Sets[0].Target)

	before := time.Now().Add(-time.Minute)
	applied, err := m.Up(ctx)
	require.NoError(t, err)
	assert.Len(t, applied, 3)
	st, err = m.Status(ctx)
	require.NoError(t, err)
	assert.True(t, st.AtHead(), st.String())
	assert.Equal(t, 2, st.Sets[0].Current)
	assert.Equal(t, 1, st.Sets[1].Current)

	_, err = p.DB.ExecContext(ctx, "INSERT INTO app_widgets (name) VALUES ('w'); INSERT INTO other_notes VALUES ('n')")
	require.NoError(t, err)
	again, err := m.Up(ctx)
	require.NoError(t, err)
	assert.Empty(t, again)

	var rows []struct {
		Set      string    `db:"set_name"`
		Version  int       `db:"version"`
		Checksum string    `db:"checksum"`
		At       time.Time `db:"applied_at"`
	}
	require.NoError(t, p.DB.SelectContext(ctx, &rows, "SELECT set_name, version, checksum, applied_at FROM hardening_schema_migrations ORDER BY set_name, version"))
	require.Len(t, rows, 3)
	assert.Len(t, rows[0].Checksum, 64)
	assert.True(t, rows[0].At.After(before), "applied_at is a timestamptz")
	var schema string
	require.NoError(t, p.DB.GetContext(ctx, &schema, "SELECT table_schema FROM information_schema.tables WHERE table_name = 'hardening_schema_migrations' AND table_schema = current_schema()"))
	assert.Equal(t, p.Schema, schema, "the bookkeeping table lives in the connection's schema")
}

// Up holds one connection for its whole run and does every read through
// it, so a pool of one connection does not deadlock.
func TestPostgresUpWithOneConnection(t *testing.T) {
	p := testenv.Postgres(t)
	db := p.Open(t)
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	applied, err := migrate.Up(ctx, db, pgOpts(pgMigrations)...)
	require.NoError(t, err)
	assert.Len(t, applied, 2)
}

func TestPostgresFailedMigrationRollsBackFully(t *testing.T) {
	p := testenv.Postgres(t)
	ctx := context.Background()
	set := map[string]string{
		"0001_ok.sql": "CREATE TABLE app_ok (id int);",
		// The error comes at run time, after the table and the row were
		// made: both must be rolled back with the bookkeeping.
		"0002_broken.sql": "CREATE TABLE app_half (id int);\nINSERT INTO app_half VALUES (1);\nSELECT 1/0;",
	}
	applied, err := migrate.Up(ctx, p.DB, pgOpts(set)...)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "0002_broken")
	require.Len(t, applied, 1)

	var half *string
	require.NoError(t, p.DB.GetContext(ctx, &half, "SELECT to_regclass('app_half')::text"))
	assert.Nil(t, half, "the failed migration's table must be rolled back")
	st, err := migrate.StatusOf(ctx, p.DB, pgOpts(set)...)
	require.NoError(t, err)
	assert.Equal(t, 1, st.Sets[0].Current)
	assert.Len(t, st.Sets[0].Pending, 1)

	// The lock was released despite the failure: another pool gets it at
	// once and fails on the migration again, not on the lock.
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = migrate.Up(short, p.Open(t), pgOpts(set)...)
	require.Error(t, err)
	assert.NotErrorIs(t, err, migrate.ErrLockTimeout)
	assert.Contains(t, err.Error(), "0002_broken")
}

// A file's statements already run as one implicit transaction on
// Postgres; the runner's transaction also covers the bookkeeping row. A
// migration whose row cannot be written (here a trigger the migration
// itself installs refuses it) leaves nothing behind either.
func TestPostgresMigrationAndItsRowAreOneTransaction(t *testing.T) {
	p := testenv.Postgres(t)
	ctx := context.Background()
	trap := map[string]string{"0001_trap.sql": `CREATE TABLE app_trapped (id int);
CREATE FUNCTION app_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
CREATE TRIGGER app_refuse BEFORE INSERT ON hardening_schema_migrations FOR EACH ROW EXECUTE FUNCTION app_refuse();`}
	_, err := migrate.Up(ctx, p.DB, pgOpts(trap)...)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refused")
	var trapped *string
	require.NoError(t, p.DB.GetContext(ctx, &trapped, "SELECT to_regclass('app_trapped')::text"))
	assert.Nil(t, trapped, "the migration must be rolled back with its bookkeeping row")
	applied, err := migrate.Up(ctx, p.DB, pgOpts(pgMigrations)...)
	require.NoError(t, err, "the trigger was rolled back too")
	assert.Len(t, applied, len(pgMigrations))
}

func TestPostgresStatusDetectsAheadAndMismatch(t *testing.T) {
	p := testenv.Postgres(t)
	ctx := context.Background()
	_, err := migrate.Up(ctx, p.DB, pgOpts(pgMigrations)...)
	require.NoError(t, err)

	st, err := migrate.StatusOf(ctx, p.DB, pgOpts(map[string]string{"0001_widgets.sql": pgMigrations["0001_widgets.sql"]})...)
	require.NoError(t, err)
	assert.Equal(t, migrate.ReasonAhead, st.Reason())
	require.Len(t, st.Sets[0].Unknown, 1)
	assert.Equal(t, 2, st.Sets[0].Unknown[0].Version)
	assert.False(t, st.Sets[0].Unknown[0].AppliedAt.IsZero())

	edited := map[string]string{
		"0001_widgets.sql": "CREATE TABLE app_widgets (id bigserial PRIMARY KEY, name text);",
		"0002_gadgets.sql": pgMigrations["0002_gadgets.sql"],
	}
	st, err = migrate.StatusOf(ctx, p.DB, pgOpts(edited)...)
	require.NoError(t, err)
	assert.Equal(t, migrate.ReasonChecksumMismatch, st.Reason())
	_, err = migrate.Up(ctx, p.DB, pgOpts(edited)...)
	assert.ErrorIs(t, err, migrate.ErrChecksumMismatch)

	st, err = migrate.StatusOf(ctx, p.DB, migrate.WithoutKitMigrations())
	require.NoError(t, err)
	assert.Equal(t, migrate.ReasonAhead, st.Reason(), "a set the binary does not register")
}

func TestPostgresEnforceAndReadiness(t *testing.T) {
	ctx := context.Background()
	t.Run("strict pending names the versions and the command", func(t *testing.T) {
		p := testenv.Postgres(t)
		_, err := migrate.Enforce(ctx, p.DB, migrate.Policy{DisableAutoApply: true, Strict: true, UpCommand: "hub migrate up"}, pgOpts(pgMigrations)...)
		require.ErrorIs(t, err, migrate.ErrPending)
		assert.Contains(t, err.Error(), "0002_gadgets")
		assert.Contains(t, err.Error(), "hub migrate up")
	})
	t.Run("strict with auto-apply starts at head", func(t *testing.T) {
		p := testenv.Postgres(t)
		st, err := migrate.Enforce(ctx, p.DB, migrate.Policy{Strict: true}, pgOpts(pgMigrations)...)
		require.NoError(t, err)
		assert.True(t, st.AtHead())
	})
	t.Run("readiness follows the schema", func(t *testing.T) {
		p := testenv.Postgres(t)
		m, err := migrate.New(p.DB, pgOpts(pgMigrations)...)
		require.NoError(t, err)
		h := handler(t, m, migrate.CacheFor(0))
		code, body := readyz(t, h, "?verbose")
		assert.Equal(t, 503, code)
		assert.Equal(t, migrate.ReasonPending, body["reason"])
		_, err = m.Up(ctx)
		require.NoError(t, err)
		code, body = readyz(t, h, "")
		assert.Equal(t, 200, code)
		assert.Equal(t, "ready", body["status"])

		edited, err := migrate.New(p.DB, pgOpts(map[string]string{"0001_widgets.sql": "SELECT 1;", "0002_gadgets.sql": pgMigrations["0002_gadgets.sql"]})...)
		require.NoError(t, err)
		code, body = readyz(t, handler(t, edited, migrate.CacheFor(0)), "")
		assert.Equal(t, 503, code)
		assert.Equal(t, migrate.ReasonChecksumMismatch, body["reason"])

		require.NoError(t, p.DB.Close())
		code, body = readyz(t, h, "")
		assert.Equal(t, 503, code)
		assert.Equal(t, migrate.ReasonDBUnavailable, body["reason"])
	})
}

// TestPostgresConcurrentUp starts Up on 8 pools (replicas) of one schema at
// once: every migration is applied exactly once.
func TestPostgresConcurrentUp(t *testing.T) {
	p := testenv.Postgres(t)
	const n = 8
	pools := make([]*sqlx.DB, n)
	for i := range pools {
		pools[i] = p.Open(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	start := make(chan struct{})
	for _, db := range pools {
		wg.Go(func() {
			<-start
			applied, err := migrate.Up(ctx, db, pgOpts(pgMigrations)...)
			assert.NoError(t, err)
			mu.Lock()
			total += len(applied)
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	assert.Equal(t, len(pgMigrations), total, "each migration applied exactly once across %d pools", n)
	assertRecordedOnce(t, p.DB, len(pgMigrations))
}

func assertRecordedOnce(t *testing.T, db *sqlx.DB, want int) {
	t.Helper()
	var rows, distinct int
	require.NoError(t, db.Get(&rows, "SELECT count(*) FROM hardening_schema_migrations"))
	require.NoError(t, db.Get(&distinct, "SELECT count(DISTINCT (set_name, version)) FROM hardening_schema_migrations"))
	assert.Equal(t, want, rows)
	assert.Equal(t, rows, distinct)
}

// TestPostgresProcessesUp starts 4 OS processes that call Up on one schema
// at the same moment; each migration is applied by exactly one of them.
func TestPostgresProcessesUp(t *testing.T) {
	p := testenv.Postgres(t)
	start := time.Now().Add(time.Second).UnixNano()
	var cmds []*exec.Cmd
	var outs []fmt.Stringer
	for range 4 {
		cmd, out := pgHelper(t, p.URL, "up", fmt.Sprintf("MIGRATE_PG_HELPER_START=%d", start))
		cmds = append(cmds, cmd)
		outs = append(outs, out)
	}
	applied := sumApplied(t, cmds, outs)
	assert.Equal(t, len(pgMigrations), applied, "each migration applied by exactly one process")
	assertRecordedOnce(t, p.DB, len(pgMigrations))
}

// TestPostgresLockDiesWithItsProcess: a process that holds the migration
// lock makes Up wait (and give up with ErrLockTimeout when ctx ends); once
// that process is killed, the server releases its session lock and Up
// proceeds, with no expiry to wait for.
func TestPostgresLockDiesWithItsProcess(t *testing.T) {
	p := testenv.Postgres(t)
	cmd, out := pgHelper(t, p.URL, "lock")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "LOCKED") {
		require.True(t, time.Now().Before(deadline), "the child never took the lock: %s", out.String())
		require.Nil(t, cmd.ProcessState, out.String())
		time.Sleep(20 * time.Millisecond)
	}
	ctx := context.Background()
	// Long enough to connect on a busy machine: the wait must end on the
	// lock, not on the dial.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := migrate.Up(short, p.DB, pgOpts(pgMigrations)...)
	require.ErrorIs(t, err, migrate.ErrLockTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	long, cancel2 := context.WithTimeout(ctx, 30*time.Second)
	defer cancel2()
	applied, err := migrate.Up(long, p.DB, pgOpts(pgMigrations)...)
	require.NoError(t, err)
	assert.Len(t, applied, len(pgMigrations))
}

// pgHelper re-executes the test binary as TestHelperProcessPostgres in
// mode ("up" or "lock") on the schema at url. The child is killed at
// cleanup if still running.
func pgHelper(t *testing.T, url, mode string, env ...string) (*exec.Cmd, *testenv.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessPostgres$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), "MIGRATE_PG_HELPER_URL="+url, "MIGRATE_PG_HELPER_MODE="+mode), env...)
	out := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, out
}

func TestHelperProcessPostgres(t *testing.T) {
	url := os.Getenv("MIGRATE_PG_HELPER_URL")
	if url == "" {
		t.Skip("helper process for the Postgres cross-process tests")
	}
	ctx := context.Background()
	db, err := sqlx.Open("pgx", url)
	require.NoError(t, err)
	defer db.Close()
	switch os.Getenv("MIGRATE_PG_HELPER_MODE") {
	case "lock":
		// Take the lock as Up does, then idle until killed.
		conn, err := db.Conn(ctx)
		require.NoError(t, err)
		_, err = conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtextextended('hardening_migrate:' || current_schema(), 0))`)
		require.NoError(t, err)
		fmt.Println("LOCKED")
		time.Sleep(time.Minute)
		t.Fatal("not killed")
	case "up":
		var start int64
		_, _ = fmt.Sscanf(os.Getenv("MIGRATE_PG_HELPER_START"), "%d", &start)
		time.Sleep(time.Until(time.Unix(0, start)))
		applied, err := migrate.Up(ctx, db, pgOpts(pgMigrations)...)
		require.NoError(t, err)
		fmt.Printf("APPLIED %d\n", len(applied))
	default:
		t.Fatal(errors.New("unknown MIGRATE_PG_HELPER_MODE"))
	}
}
