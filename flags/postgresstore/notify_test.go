package postgresstore_test

import (
	"context"
	"crypto/md5"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/flags/postgresstore"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

// channelOf is the channel the migration names for schema.
func channelOf(schema string) string {
	if len(schema) > 47 {
		sum := md5.Sum([]byte(schema))
		schema = hex.EncodeToString(sum[:])
	}
	return "hardening_flags:" + schema
}

// listeners counts the server's sessions whose last statement was the
// LISTEN on ch.
func listeners(t *testing.T, db *sqlx.DB, ch string) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE state = 'idle' AND query = $1`, "LISTEN "+pgx.Identifier{ch}.Sanitize()))
	return n
}

func waitListeners(t *testing.T, db *sqlx.DB, ch string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return listeners(t, db, ch) == n }, 5*time.Second, 5*time.Millisecond,
		"want %d listeners on %s", n, ch)
}

// subscribe runs s.Subscribe in a goroutine; names receives the
// notifications, stop cancels and returns Subscribe's error.
func subscribe(t *testing.T, s *postgresstore.Store) (names chan string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	names = make(chan string, 64)
	done := make(chan error, 1)
	go func() { done <- s.Subscribe(ctx, func(f string) { names <- f }) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Subscribe did not return within 5s of its context's end")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return names, stop
}

func toggle(t *testing.T, s flags.Store, flag string) {
	t.Helper()
	_, err := s.Toggle(context.Background(), flags.ToggleRequest{Flag: flag, Value: true, By: "ops", At: time.Now()})
	require.NoError(t, err)
}

func TestChannelNamesTheSchema(t *testing.T) {
	p := testenv.PostgresKit(t)
	ch, err := newStore(t, p.DB).Channel(context.Background())
	require.NoError(t, err)
	assert.Equal(t, channelOf(p.Schema), ch)
	assert.LessOrEqual(t, len(ch), 63, "Postgres truncates identifiers at 63 bytes")
}

// TestSubscribeHearsOnlyItsSchema: a toggle in another schema of the same
// database is not heard; one in the store's schema is, with its name.
func TestSubscribeHearsOnlyItsSchema(t *testing.T) {
	a, b := testenv.PostgresKit(t), testenv.PostgresKit(t)
	sa, sb := newStore(t, a.DB), newStore(t, b.DB)
	names, stop := subscribe(t, sa)
	waitListeners(t, a.DB, channelOf(a.Schema), 1)
	toggle(t, sb, "other.schema")
	toggle(t, sa, "this.schema")
	select {
	case n := <-names:
		assert.Equal(t, "this.schema", n)
	case <-time.After(time.Second):
		t.Fatal("no notification within 1s")
	}
	require.ErrorIs(t, stop(), context.Canceled)
	waitListeners(t, a.DB, channelOf(a.Schema), 0) // the listener's connection is closed
}

// TestPushWithoutPolling: with the clients' polling practically off, a
// toggle on one replica reaches the other through LISTEN/NOTIFY alone.
func TestPushWithoutPolling(t *testing.T) {
	p := testenv.PostgresKit(t)
	a := startClient(t, newStore(t, p.DB))
	b := startClient(t, newStore(t, p.Open(t)))
	waitListeners(t, p.DB, channelOf(p.Schema), 2)
	_, err := a.Toggle(context.Background(), "llm.streaming", true, flags.Change{By: "ops"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.Enabled("llm.streaming", "", false) }, time.Second, 5*time.Millisecond)
}

// TestListenerReconnects: when the server ends the listener's session, the
// client subscribes again and later toggles still arrive without polling.
func TestListenerReconnects(t *testing.T) {
	p := testenv.PostgresKit(t)
	b := startClient(t, newStore(t, p.Open(t)))
	listen := "LISTEN " + pgx.Identifier{channelOf(p.Schema)}.Sanitize()
	pids := func() []int {
		var out []int
		require.NoError(t, p.DB.Select(&out, `SELECT pid FROM pg_stat_activity WHERE state = 'idle' AND query = $1`, listen))
		return out
	}
	require.Eventually(t, func() bool { return len(pids()) == 1 }, 5*time.Second, 5*time.Millisecond)
	old := pids()[0]
	_, err := p.DB.Exec(`SELECT pg_terminate_backend($1)`, old)
	require.NoError(t, err)
	require.Eventually(t, func() bool { got := pids(); return len(got) == 1 && got[0] != old },
		5*time.Second, 10*time.Millisecond, "a new listener")
	toggle(t, newStore(t, p.DB), "llm.streaming")
	require.Eventually(t, func() bool { return b.Enabled("llm.streaming", "", false) }, time.Second, 5*time.Millisecond)
}

func startClient(t *testing.T, s flags.Store) *flags.Client {
	t.Helper()
	c, err := flags.New(s, flags.WithFlags(flags.Flag{Name: "llm.streaming"}),
		flags.WithPollInterval(time.Hour), flags.WithMaxStaleness(time.Hour))
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { assert.NoError(t, c.Close(context.Background())) })
	return c
}

// plainConnector hides the pgx connection behind database/sql's minimal
// driver.Conn, as another driver or a wrapping connector would.
type plainConnector struct{ driver.Connector }

func (c plainConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return plainConn{dc}, nil
}

type plainConn struct{ driver.Conn }

// TestPollFallback: without the pgx driver underneath, Subscribe polls the
// version and still reports a toggle of another replica within 1s.
func TestPollFallback(t *testing.T) {
	p := testenv.PostgresKit(t)
	cfg, err := pgx.ParseConfig(p.URL)
	require.NoError(t, err)
	plain := sqlx.NewDb(sql.OpenDB(plainConnector{stdlib.GetConnector(*cfg)}), "pgx")
	t.Cleanup(func() { _ = plain.Close() })
	s := newStore(t, plain, postgresstore.WithPollInterval(100*time.Millisecond))
	names, stop := subscribe(t, s)
	require.Eventually(t, func() bool { // the poller has read the first version
		var n int
		require.NoError(t, p.DB.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE state = 'idle' AND query LIKE 'SELECT version FROM hardening_flags_version%'`))
		return n > 0
	}, 5*time.Second, 5*time.Millisecond)
	toggle(t, newStore(t, p.DB), "x")
	select {
	case <-names:
	case <-time.After(time.Second):
		t.Fatal("no change reported within 1s")
	}
	assert.Equal(t, 0, listeners(t, p.DB, channelOf(p.Schema)))
	require.ErrorIs(t, stop(), context.Canceled)
}

// TestListenerSurvivesQuietPeriods: with a short health interval the
// listener times out its wait and pings many times; the connection stays
// usable and a later toggle is still heard.
func TestListenerSurvivesQuietPeriods(t *testing.T) {
	p := testenv.PostgresKit(t)
	s := newStore(t, p.DB, postgresstore.WithHealthInterval(20*time.Millisecond))
	names, stop := subscribe(t, s)
	var pid int
	require.Eventually(t, func() bool {
		err := p.DB.Get(&pid, `SELECT pid FROM pg_stat_activity WHERE query = $1`, "LISTEN "+pgx.Identifier{channelOf(p.Schema)}.Sanitize())
		return err == nil
	}, 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { // the listener's last statement turns into the ping
		var q string
		require.NoError(t, p.DB.Get(&q, `SELECT query FROM pg_stat_activity WHERE pid = $1`, pid))
		return q == "-- ping"
	}, 5*time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // several more quiet periods
	toggle(t, newStore(t, p.DB), "after.quiet")
	select {
	case n := <-names:
		assert.Equal(t, "after.quiet", n)
	case <-time.After(time.Second):
		t.Fatal("no notification within 1s after quiet periods")
	}
	require.ErrorIs(t, stop(), context.Canceled)
}
