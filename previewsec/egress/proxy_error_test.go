package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
)

// TestProxyCustomErrorHandler: every answer the proxy gives itself reaches
// the handler as a *ProxyError that is a hardening.Error with the default
// status and reason; the reason header is set before the handler runs.
func TestProxyCustomErrorHandler(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []error
	f := newProxyFixture(t, WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		mu.Lock()
		got = append(got, err)
		mu.Unlock()
		w.WriteHeader(http.StatusTeapot)
	}))
	last := func() error {
		mu.Lock()
		defer mu.Unlock()
		require.NotEmpty(t, got)
		return got[len(got)-1]
	}
	check := func(status int, reason string) *ProxyError {
		t.Helper()
		var pe *ProxyError
		require.ErrorAs(t, last(), &pe)
		var he hardening.Error
		require.ErrorAs(t, last(), &he)
		assert.Equal(t, status, he.Problem().Status)
		assert.Equal(t, reason, he.Problem().Reason)
		return pe
	}

	resp, err := f.client.Get(fmt.Sprintf("http://127.0.0.1:%d/", f.httpPort))
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusTeapot, resp.StatusCode)
	assert.Equal(t, ReasonNotInAllowlist, resp.Header.Get(ReasonHeader))
	pe := check(http.StatusForbidden, ReasonNotInAllowlist)
	assert.ErrorIs(t, pe, ErrDenied)
	assert.False(t, pe.Decision.Allowed)

	c, _, resp := f.connect(t, "metadata.test:443")
	_ = c.Close()
	assert.Equal(t, http.StatusTeapot, resp.StatusCode)
	check(http.StatusForbidden, ReasonSpecialPurpose)

	resp, err = http.Get(f.proxyURL.String() + "/")
	require.NoError(t, err)
	_ = resp.Body.Close()
	check(http.StatusBadRequest, "not_a_proxy_request")

	resp, err = f.client.Get("http://" + f.closedHost() + "/")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusTeapot, resp.StatusCode)
	pe = check(http.StatusBadGateway, "upstream_unreachable")
	assert.Error(t, errors.Unwrap(pe), "the dial error is kept")
}

// TestProxyTunnelLimitError: the 503 of a full proxy carries Retry-After
// through its Problem.
func TestProxyTunnelLimitError(t *testing.T) {
	e := &ProxyError{Status: http.StatusServiceUnavailable, Reason: ReasonTunnelLimit}
	assert.Equal(t, time.Second, e.Problem().RetryAfter)
	_, err := NewProxy(mustPolicy(t), WithErrorHandler(nil))
	assert.Error(t, err, "a nil error handler is reported")
}

func mustPolicy(t *testing.T) *Policy {
	t.Helper()
	p, err := NewPolicy()
	require.NoError(t, err)
	return p
}

// TestProxyCloseGraceful: Close lets an open tunnel run until ctx ends,
// then cuts it and reports ctx's error; new tunnels are refused at once;
// with no tunnel open Close returns nil at once.
func TestProxyCloseGraceful(t *testing.T) {
	t.Parallel()
	f := newProxyFixture(t)
	c, br, resp := f.connect(t, "echo.test:"+itoa(f.echoPort))
	defer c.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan error, 1)
	go func() { closed <- f.proxy.Close(ctx) }()

	// The tunnel still carries bytes while Close waits.
	_, err := io.WriteString(c, "ping")
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(br, buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf))
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v with a tunnel open", err)
	default:
	}

	// New tunnels are refused (the connection is dropped).
	c2, err := net.DialTimeout("tcp", f.proxyURL.Host, 5*time.Second)
	require.NoError(t, err)
	_ = c2.SetDeadline(time.Now().Add(10 * time.Second))
	dest := "echo.test:" + itoa(f.echoPort)
	_, err = fmt.Fprintf(c2, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", dest, dest)
	require.NoError(t, err)
	_, err = http.ReadResponse(bufio.NewReader(c2), &http.Request{Method: http.MethodConnect})
	assert.Error(t, err, "a tunnel opened after Close is dropped")
	_ = c2.Close()

	cancel()
	select {
	case err := <-closed:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after its context ended")
	}
	_, err = br.ReadByte()
	assert.Error(t, err, "the tunnel is cut")
	assert.NoError(t, f.proxy.Close(context.Background()), "no tunnel left: Close returns nil")
}
