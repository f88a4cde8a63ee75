package postgresstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// healthInterval is how long the listener waits for a notification before
// it checks its connection (the default of the test-only
// withHealthInterval).
const healthInterval = 30 * time.Second

// errNoPgx: the pool's connections do not come from the pgx driver.
var errNoPgx = errors.New("flags/postgresstore: the database handle does not use the pgx driver")

// Channel returns the LISTEN/NOTIFY channel toggles are announced on, as
// the database names it for the schema this store's connections use.
func (s *Store) Channel(ctx context.Context) (string, error) {
	var ch string
	if err := s.db.QueryRowContext(ctx, `SELECT hardening_flags_channel()`).Scan(&ch); err != nil {
		return "", fmt.Errorf("flags/postgresstore: channel: %w", err)
	}
	return ch, nil
}

// Subscribe implements flags.Notifier: it calls fn with the flag's name for
// every toggle committed on this schema, by any replica, until ctx is done
// (then it returns ctx.Err()). It LISTENs on a dedicated connection opened
// with the pool's pgx configuration, or polls the version when the handle
// does not use pgx (see the package doc). It returns another error when
// the subscription cannot be set up or breaks.
func (s *Store) Subscribe(ctx context.Context, fn func(flag string)) error {
	conn, err := s.listenConn(ctx)
	if errors.Is(err, errNoPgx) {
		return s.pollVersion(ctx, fn)
	}
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	var ch string
	if err := conn.QueryRow(ctx, `SELECT hardening_flags_channel()`).Scan(&ch); err != nil {
		return s.fail(ctx, "channel", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
		return s.fail(ctx, "listen", err)
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, s.health)
		n, err := conn.WaitForNotification(wctx)
		quiet := errors.Is(wctx.Err(), context.DeadlineExceeded)
		cancel()
		switch {
		case err == nil:
			fn(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case quiet: // no notification for a while: is the connection alive?
			if err := conn.Ping(ctx); err != nil {
				return s.fail(ctx, "listener ping", err)
			}
		default:
			return s.fail(ctx, "listen", err)
		}
	}
}

func (s *Store) fail(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("flags/postgresstore: %s: %w", what, err)
}

// listenConn opens a connection of its own with the configuration of one
// of the pool's connections, borrowed for a moment.
func (s *Store) listenConn(ctx context.Context) (*pgx.Conn, error) {
	sc, err := s.db.Conn(ctx)
	if err != nil {
		return nil, s.fail(ctx, "listener", err)
	}
	var cfg *pgx.ConnConfig
	err = sc.Raw(func(dc any) error {
		c, ok := dc.(interface{ Conn() *pgx.Conn })
		if !ok {
			return errNoPgx
		}
		cfg = c.Conn().Config() // a copy
		// The copy's notification hook is the pooled connection's
		// buffer: this connection must get its own.
		cfg.OnNotification = nil
		return nil
	})
	_ = sc.Close()
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, s.fail(ctx, "listener connect", err)
	}
	return conn, nil
}

// pollVersion calls fn (with an empty flag name: which flag changed is not
// known) whenever the version changes, until ctx is done.
func (s *Store) pollVersion(ctx context.Context, fn func(flag string)) error {
	last, err := s.Version(ctx)
	if err != nil {
		return s.fail(ctx, "poll", err)
	}
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		v, err := s.Version(ctx)
		if err != nil {
			return s.fail(ctx, "poll", err)
		}
		if v != last {
			last = v
			fn("")
		}
	}
}
