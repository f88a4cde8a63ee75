package redisbus_test

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/streamauth/redisbus"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = []byte("0123456789abcdef0123456789abcdef")

// replica is one process's registry, bus and SSE server.
type replica struct {
	reg *streamauth.Registry
	bus *redisbus.Bus
	url string
}

func newReplica(t *testing.T, client redis.UniversalClient, prefix string, log *slog.Logger) *replica {
	t.Helper()
	bus, err := redisbus.New(client, redisbus.WithPrefix(prefix), redisbus.WithLogger(log),
		redisbus.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	require.NoError(t, err)
	reg, err := streamauth.NewRegistry(streamauth.WithBroadcaster(bus), streamauth.WithLogger(log))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, bus.Start(ctx, reg))
	auth, err := streamauth.NewJWT(secret)
	require.NoError(t, err)
	h, err := streamauth.SSE(auth, reg, streamauth.ForwardSSE)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = reg.Close(ctx)
		srv.Close()
		_ = bus.Close(ctx)
	})
	return &replica{reg: reg, bus: bus, url: srv.URL}
}

func openStream(t *testing.T, url, user, tenant string) *bufio.Reader {
	t.Helper()
	a, err := streamauth.NewJWT(secret)
	require.NoError(t, err)
	tok, err := a.Sign(streamauth.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: user,
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}, Tenant: tenant})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"?access_token="+tok, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return bufio.NewReader(resp.Body)
}

// readToEnd returns the rest of the stream.
func readToEnd(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String()
		}
	}
}

var waitFor = testenv.WaitFor

func TestRevokeOnReplicaADropsStreamOnReplicaB(t *testing.T) {
	srv := testenv.Redis(t)
	a := newReplica(t, srv.Client, srv.Prefix, nil)
	b := newReplica(t, srv.NewClient(t), srv.Prefix, nil)
	assert.True(t, strings.HasPrefix(a.bus.Channel(), srv.Prefix))

	onB := openStream(t, b.url, "alice", "acme")
	otherOnB := openStream(t, b.url, "bob", "acme")
	onA := openStream(t, a.url, "alice", "acme")
	waitFor(t, "streams", func() bool { return a.reg.Status().Active == 1 && b.reg.Status().Active == 2 })

	n, err := a.reg.Revoke(context.Background(), streamauth.Selector{Subject: "alice"})
	require.NoError(t, err)
	assert.Equal(t, 1, n, "Revoke counts local streams")
	assert.Contains(t, readToEnd(t, onA), "event: auth_revoked")
	assert.Contains(t, readToEnd(t, onB), "event: auth_revoked")
	waitFor(t, "B dropped alice", func() bool { return b.reg.Status().Active == 1 })
	assert.Equal(t, "bob", b.reg.Streams()[0].Subject)
	assert.EqualValues(t, 1, b.reg.Status().ByReason[streamauth.ReasonRevoked])

	// By tenant, from B to A.
	onA2 := openStream(t, a.url, "carol", "acme")
	waitFor(t, "stream on A", func() bool { return a.reg.Status().Active == 1 })
	_, err = b.reg.Revoke(context.Background(), streamauth.Selector{Tenant: "acme"})
	require.NoError(t, err)
	assert.Contains(t, readToEnd(t, onA2), "event: auth_revoked")
	assert.Contains(t, readToEnd(t, otherOnB), "event: auth_revoked")
}

// lines reads r line by line into a channel until the stream ends.
func lines(r *bufio.Reader) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				ch <- line
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// until collects lines from ch until one contains want, or fails.
func until(t *testing.T, ch <-chan string, want string) string {
	t.Helper()
	var b strings.Builder
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-ch:
			require.True(t, ok, "stream ended before %q; got:\n%s", want, b.String())
			b.WriteString(line)
			if strings.Contains(line, want) {
				return b.String()
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %q; got:\n%s", want, b.String())
		}
	}
}

// pingUntilSubscribed broadcasts pings from r until every stream in chs
// has seen one: a stream receives events once its handler subscribed, a
// moment after it is registered.
func pingUntilSubscribed(t *testing.T, r *replica, chs ...<-chan string) {
	t.Helper()
	stop := make(chan struct{})
	pinged := make(chan struct{})
	go func() {
		defer close(pinged)
		for {
			_, _ = r.reg.Broadcast(context.Background(), streamauth.Event{Type: "ping", Data: []byte(`{}`)})
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	for _, ch := range chs {
		until(t, ch, "event: ping")
	}
	close(stop)
	<-pinged
}

// twoReplicas returns two replicas sharing one Redis.
func twoReplicas(t *testing.T) (a, b *replica) {
	t.Helper()
	srv := testenv.Redis(t)
	return newReplica(t, srv.Client, srv.Prefix, nil), newReplica(t, srv.NewClient(t), srv.Prefix, nil)
}

func TestPublishReachesOtherReplicas(t *testing.T) {
	a, b := twoReplicas(t)

	acmeOnB := lines(openStream(t, b.url, "alice", "acme"))
	globexOnB := lines(openStream(t, b.url, "bob", "globex"))
	waitFor(t, "streams on B", func() bool { return b.reg.Status().Active == 2 })
	pingUntilSubscribed(t, a, acmeOnB, globexOnB)

	ctx := context.Background()
	n, err := a.reg.Publish(ctx, "acme", streamauth.Event{ID: "1", Type: "preview.created", Data: []byte(`{"preview_id":"pv_1"}`)})
	require.NoError(t, err)
	assert.Zero(t, n, "Publish counts local streams; A has none")
	_, err = a.reg.Broadcast(ctx, streamauth.Event{Type: "heartbeat", Data: []byte(`{"n":1}`)})
	require.NoError(t, err)

	got := until(t, acmeOnB, `"n":1`)
	assert.Contains(t, got, "event: preview.created")
	assert.Contains(t, got, `{"preview_id":"pv_1"}`)
	other := until(t, globexOnB, `"n":1`)
	assert.NotContains(t, other, "preview.created", "another tenant's stream never sees the event")
	assert.Contains(t, other, "event: heartbeat")

	_, err = a.reg.Publish(ctx, "acme", streamauth.Event{Type: "x", Data: []byte("not json")})
	assert.Error(t, err, "an event the bus cannot carry is reported")
	assert.Error(t, a.bus.BroadcastEvent(ctx, "acme", streamauth.Event{Type: "x", Data: []byte("not json")}))
}

// Registry.Publish delivers through the bus: one call reaches the tenant's
// streams on this replica and on the other, each exactly once (the
// receiving replica delivers locally without sending the event back).
func TestPublishDeliversOncePerReplica(t *testing.T) {
	a, b := twoReplicas(t)

	onA := lines(openStream(t, a.url, "alice", "acme"))
	onB := lines(openStream(t, b.url, "bob", "acme"))
	waitFor(t, "streams", func() bool { return a.reg.Status().Active == 1 && b.reg.Status().Active == 1 })
	pingUntilSubscribed(t, a, onA, onB)

	ctx := context.Background()
	n, err := a.reg.Publish(ctx, "acme", streamauth.Event{Type: "order.created", Data: []byte(`{"id":"ord_1"}`)})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	seen := map[string]string{"B": until(t, onB, "event: order.created")}
	// Markers from each side, after the event on the one channel: an echo
	// of the event (A hearing itself, or B sending it back) would arrive
	// before them.
	_, err = b.reg.Publish(ctx, "acme", streamauth.Event{Type: "end.b", Data: []byte(`{}`)})
	require.NoError(t, err)
	_, err = a.reg.Publish(ctx, "acme", streamauth.Event{Type: "end.a", Data: []byte(`{}`)})
	require.NoError(t, err)
	for name, ch := range map[string]<-chan string{"A": onA, "B": onB} {
		got := seen[name] + untilAll(t, ch, "event: end.b", "event: end.a")
		assert.Equal(t, 1, strings.Count(got, "event: order.created"), "stream on %s: the event once:\n%s", name, got)
		assert.Equal(t, 1, strings.Count(got, "event: end.a"), "stream on %s: end.a once", name)
		assert.Equal(t, 1, strings.Count(got, "event: end.b"), "stream on %s: end.b once", name)
	}
}

// untilAll collects lines from ch until each of wants has appeared.
func untilAll(t *testing.T, ch <-chan string, wants ...string) string {
	t.Helper()
	var b strings.Builder
	for _, w := range wants {
		if !strings.Contains(b.String(), w) {
			b.WriteString(until(t, ch, w))
		}
	}
	return b.String()
}

// trackingDialer records the connections it opens so the test can cut them.
type trackingDialer struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (d *trackingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		d.mu.Lock()
		d.conns = append(d.conns, c)
		d.mu.Unlock()
	}
	return c, err
}

func (d *trackingDialer) cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		_ = c.Close()
	}
	d.conns = nil
}

func TestReconnectsAfterLostConnection(t *testing.T) {
	srv := testenv.Redis(t)
	opt, err := redis.ParseURL(srv.URL)
	require.NoError(t, err)
	d := &trackingDialer{}
	opt.Dialer = d.dial
	client := redis.NewClient(opt)
	t.Cleanup(func() { _ = client.Close() })
	var logs testenv.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	b := newReplica(t, client, srv.Prefix, log)
	a := newReplica(t, srv.Client, srv.Prefix, nil)

	d.cut()
	waitFor(t, "loss logged", func() bool { return strings.Contains(logs.String(), "connection lost") })
	waitFor(t, "reconnect logged", func() bool { return strings.Contains(logs.String(), "reconnected") })

	onB := openStream(t, b.url, "alice", "acme")
	waitFor(t, "stream", func() bool { return b.reg.Status().Active == 1 })
	_, err = a.reg.Revoke(context.Background(), streamauth.Selector{Subject: "alice"})
	require.NoError(t, err)
	assert.Contains(t, readToEnd(t, onB), "event: auth_revoked")
}

func TestBroadcastFailureIsReported(t *testing.T) {
	srv := testenv.Redis(t)
	c := srv.NewClient(t)
	bus, err := redisbus.New(c, redisbus.WithPrefix(srv.Prefix))
	require.NoError(t, err)
	reg, err := streamauth.NewRegistry(streamauth.WithBroadcaster(bus))
	require.NoError(t, err)
	defer reg.Close(context.Background())
	require.NoError(t, c.Close())
	_, err = reg.Revoke(context.Background(), streamauth.Selector{Subject: "x"})
	assert.Error(t, err)
	assert.Error(t, bus.Start(context.Background(), reg), "cannot subscribe on a closed client")
}

func TestNewValidates(t *testing.T) {
	srv := testenv.Redis(t)
	_, err := redisbus.New(nil)
	assert.Error(t, err)
	_, err = redisbus.New(srv.Client, redisbus.WithChannel(""))
	assert.Error(t, err)
	_, err = redisbus.New(srv.Client, redisbus.WithBackoff(time.Second, time.Millisecond))
	assert.Error(t, err)
	bus, err := redisbus.New(srv.Client, redisbus.WithPrefix(srv.Prefix))
	require.NoError(t, err)
	assert.Equal(t, srv.Prefix+redisbus.DefaultChannel, bus.Channel())
	assert.ErrorIs(t, bus.BroadcastRevoke(context.Background(), streamauth.Selector{}), streamauth.ErrEmptySelector)
	assert.NoError(t, bus.Close(context.Background()), "closing an unstarted bus")
}

// TestRevokeAcrossReplicasOnCluster runs the cross-replica revocation on a
// Redis Cluster (REDIS_CLUSTER_ADDRS; .ci/run starts one): each replica has
// its own cluster client.
func TestRevokeAcrossReplicasOnCluster(t *testing.T) {
	srv := testenv.RedisCluster(t)
	second := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(os.Getenv(testenv.EnvRedisClusterAddrs), ",")})
	t.Cleanup(func() { _ = second.Close() })
	a := newReplica(t, srv.Client, srv.Prefix, nil)
	b := newReplica(t, second, srv.Prefix, nil)
	onB := openStream(t, b.url, "alice", "acme")
	waitFor(t, "stream", func() bool { return b.reg.Status().Active == 1 })
	_, err := a.reg.Revoke(context.Background(), streamauth.Selector{Tenant: "acme"})
	require.NoError(t, err)
	assert.Contains(t, readToEnd(t, onB), "event: auth_revoked")
}
