package postgresstore_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/postgresstore"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newStore(t testing.TB) *postgresstore.Store {
	s, err := postgresstore.New(testenv.PostgresKit(t).DB)
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) idempotency.Store { return newStore(t) })
}

func TestNewRejectsNil(t *testing.T) {
	_, err := postgresstore.New(nil)
	require.Error(t, err)
}

// TestNewReportsUnmigrated: a store on a schema without the migration
// fails at construction, not at the first request.
func TestNewReportsUnmigrated(t *testing.T) {
	p := testenv.Postgres(t)
	_, err := postgresstore.New(p.DB)
	require.ErrorIs(t, err, postgresstore.ErrNotMigrated)

	// The table alone is not enough: the claim function is part of it.
	_, err = p.DB.Exec(`CREATE TABLE hardening_idempotency_keys (scope_key text PRIMARY KEY)`)
	require.NoError(t, err)
	_, err = postgresstore.New(p.DB)
	require.ErrorIs(t, err, postgresstore.ErrNotMigrated)
}

// TestRoundTrips counts the statements each decision sends: a first
// request through the middleware is two (claim, complete), a replay one,
// and renew and release one each.
func TestRoundTrips(t *testing.T) {
	p := testenv.PostgresKit(t)
	db, stmts := p.OpenCounting(t)
	s, err := postgresstore.New(db)
	require.NoError(t, err)
	m, err := idempotency.New(s)
	require.NoError(t, err)
	h := m.Handler(storetest.BenchHandler)

	stmts.Take()
	h.ServeHTTP(httptest.NewRecorder(), storetest.BenchRequest("first"))
	assert.Len(t, stmts.Take(), 2, "a first request: claim + complete")
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, storetest.BenchRequest("first"))
	assert.Equal(t, "true", rr.Header().Get(idempotency.DefaultReplayHeader))
	assert.Len(t, stmts.Take(), 1, "a replay: one claim")

	ctx := context.Background()
	now := time.Now()
	claim := idempotency.ClaimRequest{Key: "k", Fingerprint: "fp", Owner: "o", Now: now, LockTimeout: time.Second, TTL: time.Minute}
	for _, step := range []struct {
		name string
		call func() error
	}{
		{"claim", func() error { _, err := s.Claim(ctx, claim); return err }},
		{"in flight", func() error { c := claim; c.Owner = "p"; _, err := s.Claim(ctx, c); return err }},
		{"renew", func() error {
			_, err := s.Renew(ctx, idempotency.RenewRequest{Key: "k", Owner: "o", Now: now, LockTimeout: time.Second})
			return err
		}},
		{"takeover", func() error {
			c := claim
			c.Owner, c.Now = "q", now.Add(10*time.Second)
			res, err := s.Claim(ctx, c)
			if err == nil && !res.TookOver {
				err = fmt.Errorf("no takeover: %+v", res)
			}
			return err
		}},
		{"release", func() error { _, err := s.Release(ctx, "k", "q"); return err }},
		{"sweep", func() error { _, err := s.Sweep(ctx, now, 10); return err }},
		{"stats", func() error { _, err := s.Stats(ctx, now); return err }},
	} {
		require.NoError(t, step.call(), step.name)
		assert.Len(t, stmts.Take(), 1, step.name)
	}
}

// TestConcurrentTakeover: many replicas that find the same lapsed lease
// (or the same expired record) at once: exactly one takes it.
func TestConcurrentTakeover(t *testing.T) {
	p := testenv.PostgresKit(t)
	ctx := context.Background()
	now := time.Now()
	for _, tc := range []struct {
		name     string
		complete bool // the record completed and then expired (TTL) instead
		tookOver bool
	}{{"lapsed lease", false, true}, {"expired record", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := postgresstore.New(p.Open(t))
			require.NoError(t, err)
			key := "takeover-" + tc.name
			c := idempotency.ClaimRequest{Key: key, Fingerprint: "fp", Owner: "dead", Now: now, LockTimeout: time.Second, TTL: time.Minute}
			_, err = s.Claim(ctx, c)
			require.NoError(t, err)
			if tc.complete {
				ok, err := s.Complete(ctx, idempotency.CompleteRequest{Key: key, Owner: "dead", Now: now, TTL: time.Second, Record: idempotency.Record{StatusCode: 201}})
				require.NoError(t, err)
				require.True(t, ok)
			}
			const n = 32
			results := make([]idempotency.ClaimResult, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					c := c
					c.Owner, c.Now = fmt.Sprintf("o%d", i), now.Add(10*time.Second)
					results[i], errs[i] = s.Claim(ctx, c)
				}()
			}
			close(start)
			wg.Wait()
			claimed := 0
			for i := range n {
				require.NoError(t, errs[i])
				switch results[i].Status {
				case idempotency.Claimed:
					claimed++
					assert.Equal(t, tc.tookOver, results[i].TookOver)
				case idempotency.InFlight:
				default:
					t.Errorf("claim %d: %v", i, results[i].Status)
				}
			}
			assert.Equal(t, 1, claimed, "exactly one replica takes the key")
		})
	}
}
