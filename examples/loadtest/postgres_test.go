package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSmokePostgres runs every scenario briefly on the chain over the
// kit's Postgres stores, in process, against the server at POSTGRES_URL:
// every request answers as expected, the chain's idempotency records went
// to the run's private schema, and that schema is gone afterwards. No
// timing is checked.
func TestSmokePostgres(t *testing.T) {
	pgURL := os.Getenv("POSTGRES_URL")
	if pgURL == "" {
		t.Skip("the postgres row needs a server: set POSTGRES_URL (for example postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable); .ci/run starts one")
	}
	var logs bytes.Buffer
	res, err := run(context.Background(), config{
		Duration: 100 * time.Millisecond, Rounds: 2, Concurrency: 2,
		Scenarios: "preview,idem-first,idem-replay,quota,flags", Stores: "postgres", InProcess: true, Postgres: pgURL,
	}, &logs)
	require.NoError(t, err, logs.String())
	checkRows(t, res, "postgres")
	assert.Equal(t, 0.5, res.Rows[0].Target)
	assert.Positive(t, res.RTTMicros["postgres"])
	var md bytes.Buffer
	res.writeMarkdown(&md)
	assert.Contains(t, md.String(), "| Postgres |")
	assert.Contains(t, md.String(), "| postgres | idem-first |")

	require.Len(t, res.Notes, 1)
	m := regexp.MustCompile(`schema (loadtest_[0-9a-f]{8}), which held (\d+) idempotency records`).FindStringSubmatch(res.Notes[0])
	require.NotNil(t, m, res.Notes[0])
	n, _ := strconv.Atoi(m[2])
	// The fixture's replay key and at least one fresh key per idem-first
	// stretch.
	assert.Greater(t, n, 2, "the chain's idempotency records are in the schema")
	admin, err := sqlx.Open("pgx", pgURL)
	require.NoError(t, err)
	defer admin.Close()
	var left int
	require.NoError(t, admin.QueryRow(`SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1`, m[1]).Scan(&left))
	assert.Zero(t, left, "schema %s is dropped at the end", m[1])
}

// TestPostgresErrors checks that -postgres problems are reported, naming
// the flag, before any load (no server needed).
func TestPostgresErrors(t *testing.T) {
	for url, want := range map[string]string{
		"":                    "-stores postgres needs -postgres URL",
		"mysql://127.0.0.1/x": "-postgres: want a URL postgres://",
		// Nothing listens on port 1: the schema cannot be made.
		"postgres://u:secret@127.0.0.1:1/none?sslmode=disable": "-postgres postgres://u:xxxxx@127.0.0.1:1/none?sslmode=disable: create schema:",
	} {
		_, err := run(context.Background(), config{Duration: time.Second, Rounds: 1, Concurrency: 1, Scenarios: "flags",
			Stores: "postgres", InProcess: true, Postgres: url}, &bytes.Buffer{})
		assert.ErrorContains(t, err, want, url)
		if err != nil {
			assert.NotContains(t, err.Error(), "secret", "the password is not shown")
		}
	}
}
