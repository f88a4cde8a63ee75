package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The hub binary on Postgres (DATABASE_URL=postgres://…): the CLI, the
// degraded start with pending schema, the development secret, replicas
// migrating at once. The features on Postgres are in TestE2E, the soak and
// the fault tests.

// TestBinaryPostgresLenientFreshDatabase: on an empty schema with
// MIGRATIONS_AUTO_APPLY=false and no HUB_AUTH_SECRET, the hub starts
// degraded (503 schema_pending), `hub migrate status` lists the pending
// migrations, `hub migrate up` applies them, the hub becomes ready
// without a restart, and `hub token` signs with the development secret
// the hub keeps in the database.
func TestBinaryPostgresLenientFreshDatabase(t *testing.T) {
	pg := testPostgres(t)
	dir := t.TempDir()
	env := []string{"DATABASE_URL=" + pg.URL, "HUB_AUTH_SECRET=", "MIGRATIONS_AUTO_APPLY=false"}
	h := startHub(t, env...)
	base := "http://" + h.addr
	checkSchemaPending(t, base)
	assert.NotContains(t, h.logs(), "panic")

	code, out, stderr := runHub(t, dir, env, "migrate", "status")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "pending 0001_idempotency")
	assert.Contains(t, out, "pending 0001_hub")
	assert.Contains(t, out, "go run ./examples/hub migrate up")

	code, out, stderr = runHub(t, dir, env, "migrate", "up")
	require.Equal(t, 0, code, stderr)
	for _, m := range []string{"kit/0001_idempotency", "kit/0002_tenancy", "kit/0003_previewsec", "kit/0004_flags", "kit/0005_streamauth", "kit/0006_tenancy_rls_unset", "hub/0001_hub"} {
		assert.Contains(t, out, "applied "+m)
	}
	code, out, _ = runHub(t, dir, env, "migrate", "up")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "nothing to apply")
	assert.NotContains(t, out, "pending")

	eventually(t, 15*time.Second, "the hub to become ready", func() (bool, string) {
		status, body := getJSON(t, base+"/readyz", "")
		return status == 200, fmt.Sprint(status, body, h.logs())
	})
	code, tok, stderr := runHub(t, dir, env, "token", "-sub", "alice", "-tenant", "acme", "-admin")
	require.Equal(t, 0, code, stderr)
	status, body := getJSON(t, base+"/api/v1/whoami", strings.TrimSpace(tok))
	assert.Equal(t, 200, status, "%v", body)
	assert.Equal(t, "alice", body["user_id"])
	status, body = getJSON(t, base+"/api/v1/feature-flags", strings.TrimSpace(tok))
	assert.Equal(t, 200, status, "%v", body)
	assert.Contains(t, h.logs(), "database schema applied")
	assert.Contains(t, h.logs(), `"keys":"postgres"`, "preview keys in Postgres")

	var secrets int
	require.NoError(t, pg.DB.Get(&secrets, `SELECT count(*) FROM hub_settings WHERE key = 'dev_auth_secret'`))
	assert.Equal(t, 1, secrets, "one development secret, shared by the hub and `hub token`")
}

// TestBinaryPostgresTwoProcessesMigrateOnce: two hubs started at once on
// an empty schema apply each migration exactly once between them (the
// advisory lock), and both become ready.
func TestBinaryPostgresTwoProcessesMigrateOnce(t *testing.T) {
	pg := testPostgres(t)
	db := "DATABASE_URL=" + pg.URL
	var hubs [2]*hubProc
	var wg sync.WaitGroup
	for i := range hubs {
		wg.Go(func() { hubs[i] = startHub(t, db, "HUB_AUTH_SECRET="+testAuthSecret) })
	}
	wg.Wait()
	for _, h := range hubs {
		code, body := getJSON(t, "http://"+h.addr+"/readyz", "")
		assert.Equal(t, 200, code, "%v\n%s", body, h.logs())
	}
	applied := strings.Count(hubs[0].logs(), `"msg":"migration applied"`) + strings.Count(hubs[1].logs(), `"msg":"migration applied"`)
	var rows int
	require.NoError(t, pg.DB.Get(&rows, "SELECT count(*) FROM hardening_schema_migrations"))
	assert.Equal(t, 7, rows, "6 kit migrations and the hub's")
	assert.Equal(t, rows, applied, "every migration applied by exactly one of the two processes")
}

// TestBinaryPostgresStartupErrors: a Postgres DATABASE_URL that does not
// parse, or whose server does not answer, stops the hub with one error
// naming DATABASE_URL and never showing the password. (No server needed.)
func TestBinaryPostgresStartupErrors(t *testing.T) {
	for name, url := range map[string]string{
		"no server": "postgres://hub:s3cret-pw@127.0.0.1:1/hub?sslmode=disable&connect_timeout=2",
		"bad port":  "postgresql://hub:s3cret-pw@127.0.0.1:notaport/hub",
		"bad param": "postgres://hub:s3cret-pw@127.0.0.1:5432/hub?sslmode=sometimes",
	} {
		t.Run(name, func(t *testing.T) {
			for _, args := range [][]string{nil, {"migrate", "status"}, {"token", "-sub", "a", "-tenant", "b"}} {
				code, out, stderr := runHub(t, t.TempDir(), []string{"DATABASE_URL=" + url, "HUB_AUTH_SECRET="}, args...)
				assert.Equal(t, 1, code, "%v: %s", args, stderr)
				assert.Empty(t, out)
				last := hubError(t, stderr)
				assert.Contains(t, last, "DATABASE_URL", args)
				assert.NotContains(t, stderr, "s3cret-pw", "the password leaked (%v)", args)
				assert.NotContains(t, stderr, "panic")
			}
		})
	}
}

// TestConfigPostgresURL: postgres:// and postgresql:// select Postgres (no
// SQLite path); a URL pgx cannot parse is an error naming DATABASE_URL
// without the password.
func TestConfigPostgresURL(t *testing.T) {
	for _, u := range []string{
		"postgres://app:pw@db.internal:5432/app?sslmode=require",
		"postgresql://app@127.0.0.1/app?search_path=hub",
	} {
		t.Setenv("DATABASE_URL", u)
		c, err := configFromEnv()
		require.NoError(t, err, u)
		assert.Empty(t, c.DBPath, u)
		assert.True(t, isPostgresURL(c.DatabaseURL))
		assert.NotContains(t, c.databaseLabel(), ":pw@", "the startup log must not show the password")
	}
	for _, u := range []string{"postgres://app:s3cret-pw@db:notaport/app", "postgres://app:s3cret-pw@db/app?sslmode=sometimes"} {
		t.Setenv("DATABASE_URL", u)
		_, err := configFromEnv()
		require.Error(t, err, u)
		assert.Contains(t, err.Error(), "DATABASE_URL")
		assert.NotContains(t, err.Error(), "s3cret-pw")
	}
}

// Attack: libpq URLs also take the password as a query parameter
// (?password=…, and sslpassword for the client key); the startup log and
// the configuration error must hide it as they hide the userinfo's.
func TestConfigPostgresURLPasswordParameter(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://app@db.internal:5432/app?sslmode=require&password=s3cret-pw&sslpassword=k3y-pw")
	c, err := configFromEnv()
	require.NoError(t, err)
	assert.NotContains(t, c.databaseLabel(), "s3cret-pw", "the startup log must not show the password")
	assert.NotContains(t, c.databaseLabel(), "k3y-pw", "nor the client key's")
	assert.Contains(t, c.databaseLabel(), "sslmode=require", "the rest of the URL stays")
	t.Setenv("DATABASE_URL", "postgres://app@db/app?password=s3cret-pw&sslmode=sometimes")
	_, err = configFromEnv()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret-pw")
}
