package migrate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/migrate"
)

func appSet(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, body := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(body)}
	}
	return fsys
}

var twoMigrations = map[string]string{
	"0001_widgets.sql": "CREATE TABLE app_widgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
	"0002_gadgets.sql": "CREATE TABLE app_gadgets (id INTEGER PRIMARY KEY);\nCREATE INDEX app_gadgets_id ON app_gadgets (id);",
	"README.md":        "ignored",
}

func TestUpAppliesKitAndAppSets(t *testing.T) {
	ctx := context.Background()
	db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
	m, err := migrate.New(db, migrate.WithSet("app", appSet(twoMigrations)))
	require.NoError(t, err)

	st, err := m.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, migrate.ReasonPending, st.Reason())
	require.Len(t, st.Sets, 2)
	assert.Equal(t, "kit", st.Sets[0].Set)
	assert.Equal(t, 0, st.Sets[1].Current)
	assert.Equal(t, 2, st.Sets[1].Target)

	applied, err := m.Up(ctx)
	require.NoError(t, err)
	assert.Len(t, applied, len(m.Migrations()))

	st, err = m.Status(ctx)
	require.NoError(t, err)
	assert.True(t, st.AtHead(), st.String())
	assert.Equal(t, 2, st.Sets[1].Current)

	// Tables exist; Up again is a no-op.
	_, err = db.ExecContext(ctx, "INSERT INTO app_widgets (name) VALUES ('w')")
	require.NoError(t, err)
	again, err := m.Up(ctx)
	require.NoError(t, err)
	assert.Empty(t, again)

	var rows []struct {
		Set      string `db:"set_name"`
		Version  int    `db:"version"`
		Checksum string `db:"checksum"`
		At       string `db:"applied_at"`
	}
	require.NoError(t, db.SelectContext(ctx, &rows, "SELECT set_name, version, checksum, applied_at FROM hardening_schema_migrations WHERE set_name = 'app' ORDER BY version"))
	require.Len(t, rows, 2)
	assert.Len(t, rows[0].Checksum, 64)
	_, err = time.Parse(time.RFC3339Nano, rows[0].At)
	assert.NoError(t, err)
}

func TestFailedMigrationRollsBackAlone(t *testing.T) {
	ctx := context.Background()
	db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
	set := appSet(map[string]string{
		"0001_ok.sql":     "CREATE TABLE app_ok (id INTEGER);",
		"0002_broken.sql": "CREATE TABLE app_half (id INTEGER);\nTHIS IS NOT SQL;",
	})
	m, err := migrate.New(db, migrate.WithoutKitMigrations(), migrate.WithSet("app", set))
	require.NoError(t, err)
	applied, err := m.Up(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "0002_broken")
	require.Len(t, applied, 1)

	var n int
	require.NoError(t, db.GetContext(ctx, &n, "SELECT count(*) FROM sqlite_master WHERE name = 'app_half'"))
	assert.Zero(t, n, "the failed migration's statements must be rolled back")
	st, err := m.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, st.Sets[0].Current)
	assert.Len(t, st.Sets[0].Pending, 1)
	// The lock was released despite the failure.
	require.NoError(t, db.GetContext(ctx, &n, "SELECT count(*) FROM hardening_schema_lock"))
	assert.Zero(t, n)
}

func TestStatusDetectsAheadAndMismatch(t *testing.T) {
	ctx := context.Background()
	db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
	_, err := migrate.Up(ctx, db, migrate.WithoutKitMigrations(), migrate.WithSet("app", appSet(twoMigrations)))
	require.NoError(t, err)

	// An older binary knows only 0001: the database is ahead.
	older := appSet(map[string]string{"0001_widgets.sql": twoMigrations["0001_widgets.sql"]})
	st, err := migrate.StatusOf(ctx, db, migrate.WithoutKitMigrations(), migrate.WithSet("app", older))
	require.NoError(t, err)
	assert.Equal(t, migrate.ReasonAhead, st.Reason())
	require.Len(t, st.Sets[0].Unknown, 1)
	assert.Equal(t, 2, st.Sets[0].Unknown[0].Version)

	// A binary whose 0001 was edited after it was applied.
	edited := appSet(map[string]string{
		"0001_widgets.sql": "CREATE TABLE app_widgets (id INTEGER PRIMARY KEY, name TEXT);",
		"0002_gadgets.sql": twoMigrations["0002_gadgets.sql"],
	})
	st, err = migrate.StatusOf(ctx, db, migrate.WithoutKitMigrations(), migrate.WithSet("app", edited))
	require.NoError(t, err)
	assert.Equal(t, migrate.ReasonChecksumMismatch, st.Reason())
	_, err = migrate.Up(ctx, db, migrate.WithoutKitMigrations(), migrate.WithSet("app", edited))
	assert.ErrorIs(t, err, migrate.ErrChecksumMismatch)

	// A set recorded in the database that the binary does not register.
	st, err = migrate.StatusOf(ctx, db, migrate.WithoutKitMigrations())
	require.NoError(t, err)
	assert.Equal(t, migrate.ReasonAhead, st.Reason())
}

func TestNewRejectsBadSets(t *testing.T) {
	db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
	tests := []struct {
		name string
		opts []migrate.Option
	}{
		{"bad file name", []migrate.Option{migrate.WithSet("app", appSet(map[string]string{"create.sql": "x"}))}},
		{"version zero", []migrate.Option{migrate.WithSet("app", appSet(map[string]string{"0000_x.sql": "x"}))}},
		{"duplicate version", []migrate.Option{migrate.WithSet("app", appSet(map[string]string{"1_a.sql": "x", "0001_b.sql": "y"}))}},
		{"reserved name", []migrate.Option{migrate.WithSet("kit", appSet(twoMigrations))}},
		{"duplicate set", []migrate.Option{migrate.WithSet("app", appSet(twoMigrations)), migrate.WithSet("app", appSet(twoMigrations))}},
		{"empty name", []migrate.Option{migrate.WithSet("", appSet(twoMigrations))}},
		{"empty set", []migrate.Option{migrate.WithSet("app", appSet(nil))}},
		{"nil fs", []migrate.Option{migrate.WithSet("app", nil)}},
		{"unknown dialect", []migrate.Option{migrate.WithDialect("oracle")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := migrate.New(db, tc.opts...)
			assert.ErrorIs(t, err, migrate.ErrInvalidMigrations)
		})
	}
}

// An FS from //go:embed keeps its directory, so passing it without fs.Sub
// used to load nothing and report the set at head. New refuses it and names
// the directory to Sub into.
func TestNewRejectsEmbedWithoutSub(t *testing.T) {
	db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
	embedded := fstest.MapFS{
		"migrations/0001_widgets.sql": {Data: []byte(twoMigrations["0001_widgets.sql"])},
	}
	_, err := migrate.New(db, migrate.WithSet("app", embedded))
	require.ErrorIs(t, err, migrate.ErrInvalidMigrations)
	assert.Contains(t, err.Error(), `fs.Sub(fsys, "migrations")`)
	assert.Contains(t, err.Error(), `"app"`)

	sub, err := fs.Sub(embedded, "migrations")
	require.NoError(t, err)
	_, err = migrate.New(db, migrate.WithSet("app", sub))
	require.NoError(t, err)
}

// The zero Policy is the documented default: check on startup and apply
// pending migrations (it used to check nothing).
func TestZeroPolicyIsDefault(t *testing.T) {
	assert.Equal(t, migrate.DefaultPolicy(), migrate.Policy{})
	ctx := context.Background()
	db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
	opts := []migrate.Option{migrate.WithoutKitMigrations(), migrate.WithSet("app", appSet(twoMigrations))}
	st, err := migrate.Enforce(ctx, db, migrate.Policy{}, opts...)
	require.NoError(t, err)
	assert.True(t, st.AtHead())
	st, err = migrate.StatusOf(ctx, db, opts...)
	require.NoError(t, err)
	assert.True(t, st.AtHead(), "the zero Policy applied the pending migrations")
}

func TestConcurrentUpInOneProcess(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	var wg sync.WaitGroup
	total := make(chan int, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := testenv.OpenSQLite(t, path)
			applied, err := migrate.Up(ctx, db, migrate.WithSet("app", appSet(twoMigrations)))
			assert.NoError(t, err)
			total <- len(applied)
		}()
	}
	wg.Wait()
	close(total)
	sum := 0
	for n := range total {
		sum += n
	}
	db := testenv.OpenSQLite(t, path)
	m, err := migrate.New(db, migrate.WithSet("app", appSet(twoMigrations)))
	require.NoError(t, err)
	assert.Equal(t, len(m.Migrations()), sum, "each migration applied exactly once across 8 pools")
}

func TestUpWaitsForLockAndHonoursContext(t *testing.T) {
	ctx := context.Background()
	db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
	_, err := migrate.Up(ctx, db, migrate.WithoutKitMigrations())
	require.NoError(t, err)
	// Another process holds a fresh lock.
	_, err = db.ExecContext(ctx, `INSERT INTO hardening_schema_lock (id, owner, acquired_at, expires_at) VALUES (1, 'other', ?, ?)`,
		time.Now().UTC().Format(time.RFC3339Nano), time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano))
	require.NoError(t, err)
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = migrate.Up(cctx, db, migrate.WithSet("app", appSet(twoMigrations)))
	assert.ErrorIs(t, err, migrate.ErrLockTimeout)

	// A stale lock (its holder died) is taken over.
	_, err = db.ExecContext(ctx, `UPDATE hardening_schema_lock SET expires_at = ?`, time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano))
	require.NoError(t, err)
	applied, err := migrate.Up(ctx, db, migrate.WithSet("app", appSet(twoMigrations)))
	require.NoError(t, err)
	assert.NotEmpty(t, applied)
}

// TestTwoProcessesUp starts two OS processes that call Up on one new SQLite
// file at the same moment; every migration must be recorded once and
// applied by exactly one of them.
func TestTwoProcessesUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	start := time.Now().Add(500 * time.Millisecond).UnixNano()
	var cmds []*exec.Cmd
	var outs []fmt.Stringer
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessUp$", "-test.count=1")
		cmd.Env = append(os.Environ(), "MIGRATE_HELPER_DB="+path, fmt.Sprintf("MIGRATE_HELPER_START=%d", start))
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		require.NoError(t, cmd.Start())
		cmds = append(cmds, cmd)
		outs = append(outs, out)
	}
	applied := sumApplied(t, cmds, outs)
	db := testenv.OpenSQLite(t, path)
	m, err := migrate.New(db, migrate.WithSet("app", appSet(twoMigrations)))
	require.NoError(t, err)
	assert.Equal(t, len(m.Migrations()), applied, "each migration applied by exactly one process")
	var rows, distinct int
	require.NoError(t, db.Get(&rows, "SELECT count(*) FROM hardening_schema_migrations"))
	require.NoError(t, db.Get(&distinct, "SELECT count(DISTINCT set_name || '/' || version) FROM hardening_schema_migrations"))
	assert.Equal(t, len(m.Migrations()), rows)
	assert.Equal(t, rows, distinct)
}

// sumApplied waits for each helper process and adds up the n of their
// last "APPLIED n" lines.
func sumApplied(t *testing.T, cmds []*exec.Cmd, outs []fmt.Stringer) int {
	t.Helper()
	applied := 0
	for i, cmd := range cmds {
		require.NoError(t, cmd.Wait(), outs[i].String())
		var n int
		_, err := fmt.Sscanf(lastLine(outs[i].String(), "APPLIED "), "APPLIED %d", &n)
		require.NoError(t, err, outs[i].String())
		applied += n
	}
	return applied
}

func lastLine(out, prefix string) string {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], prefix) {
			return lines[i]
		}
	}
	return ""
}

func TestHelperProcessUp(t *testing.T) {
	path := os.Getenv("MIGRATE_HELPER_DB")
	if path == "" {
		t.Skip("helper process for TestTwoProcessesUp")
	}
	var start int64
	_, _ = fmt.Sscanf(os.Getenv("MIGRATE_HELPER_START"), "%d", &start)
	time.Sleep(time.Until(time.Unix(0, start)))
	db, err := migrate.OpenSQLite(context.Background(), path, 10*time.Second)
	require.NoError(t, err)
	defer db.Close()
	applied, err := migrate.Up(context.Background(), db, migrate.WithSet("app", appSet(twoMigrations)))
	require.NoError(t, err)
	fmt.Printf("APPLIED %d\n", len(applied))
}

func TestEnforce(t *testing.T) {
	ctx := context.Background()
	opts := func(files map[string]string) []migrate.Option {
		return []migrate.Option{migrate.WithoutKitMigrations(), migrate.WithSet("app", appSet(files))}
	}
	older := map[string]string{"0001_widgets.sql": twoMigrations["0001_widgets.sql"]}

	t.Run("strict pending names the versions and the command", func(t *testing.T) {
		db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
		_, err := migrate.Enforce(ctx, db, migrate.Policy{DisableAutoApply: true, Strict: true, UpCommand: "hub migrate up"}, opts(twoMigrations)...)
		require.ErrorIs(t, err, migrate.ErrPending)
		var se *migrate.SchemaError
		require.True(t, errors.As(err, &se))
		assert.Contains(t, err.Error(), "0001_widgets")
		assert.Contains(t, err.Error(), "0002_gadgets")
		assert.Contains(t, err.Error(), "hub migrate up")
	})
	t.Run("strict with auto-apply starts at head", func(t *testing.T) {
		db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
		st, err := migrate.Enforce(ctx, db, migrate.Policy{Strict: true}, opts(twoMigrations)...)
		require.NoError(t, err)
		assert.True(t, st.AtHead())
	})
	t.Run("strict database ahead is an error", func(t *testing.T) {
		db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
		_, err := migrate.Up(ctx, db, opts(twoMigrations)...)
		require.NoError(t, err)
		_, err = migrate.Enforce(ctx, db, migrate.Policy{Strict: true}, opts(older)...)
		require.ErrorIs(t, err, migrate.ErrAhead)
		assert.Contains(t, err.Error(), "0002_gadgets")
	})
	t.Run("lenient logs a warning and starts degraded", func(t *testing.T) {
		db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
		var logs bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&logs, nil))
		m, err := migrate.New(db, append(opts(twoMigrations), migrate.WithLogger(log))...)
		require.NoError(t, err)
		st, err := m.Enforce(ctx, migrate.Policy{DisableAutoApply: true, UpCommand: "hub migrate up"})
		require.NoError(t, err)
		assert.Equal(t, migrate.ReasonPending, st.Reason())
		assert.Contains(t, logs.String(), `"level":"WARN"`)
		assert.Contains(t, logs.String(), "hub migrate up")
		assert.Contains(t, logs.String(), "0002_gadgets")
	})
	t.Run("check off does nothing", func(t *testing.T) {
		db := testenv.OpenSQLite(t, filepath.Join(t.TempDir(), "a.db"))
		_, err := migrate.Enforce(ctx, db, migrate.Policy{DisableCheck: true, Strict: true}, opts(twoMigrations)...)
		require.NoError(t, err)
		st, err := migrate.StatusOf(ctx, db, opts(twoMigrations)...)
		require.NoError(t, err)
		assert.Equal(t, migrate.ReasonPending, st.Reason())
	})
}

func TestKitMigrationsApplyToSQLite(t *testing.T) {
	db := testenv.SQLite(t)
	st, err := migrate.StatusOf(context.Background(), db)
	require.NoError(t, err)
	assert.True(t, st.AtHead(), st.String())
	var n int
	require.NoError(t, db.Get(&n, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name LIKE 'hardening_%'"))
	assert.GreaterOrEqual(t, n, 5)
}
