package streamauth_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/streamauth"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func newAuth(t testing.TB, opts ...streamauth.JWTOption) *streamauth.JWTAuthenticator {
	t.Helper()
	a, err := streamauth.NewJWT(testSecret, opts...)
	require.NoError(t, err)
	return a
}

func token(t testing.TB, a *streamauth.JWTAuthenticator, sub, tid string, exp time.Time) string {
	t.Helper()
	tok, err := a.Sign(streamauth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(exp)},
		Tenant:           tid,
	})
	require.NoError(t, err)
	return tok
}

func newRegistry(t testing.TB, opts ...streamauth.Option) *streamauth.Registry {
	t.Helper()
	reg, err := streamauth.NewRegistry(opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = reg.Close(ctx)
	})
	return reg
}

// serve starts h on a loopback server closed at cleanup.
func serve(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func httpClient(t testing.TB) *http.Client {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// sseClient reads an event stream line by line from a real HTTP response.
type sseClient struct {
	resp   *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
}

func openSSE(t testing.TB, c *http.Client, url, tok string, hdr ...string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	sc := &sseClient{resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}
	t.Cleanup(sc.close)
	return sc
}

func (c *sseClient) close() { c.cancel(); _ = c.resp.Body.Close() }

// frame reads the next SSE frame (lines up to a blank line); io.EOF at the
// end of the stream.
func (c *sseClient) frame() (string, error) {
	var b strings.Builder
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			if b.Len() > 0 || line != "" {
				return b.String() + line, err
			}
			return "", err
		}
		if line == "\n" {
			return b.String(), nil
		}
		b.WriteString(line)
	}
}

// until reads frames until one contains want, returning it; it fails at
// EOF.
func (c *sseClient) until(t testing.TB, want string) string {
	t.Helper()
	for {
		f, err := c.frame()
		require.NoError(t, err, "stream ended before %q", want)
		if strings.Contains(f, want) {
			return f
		}
	}
}

// rest reads the stream to its end.
func (c *sseClient) rest() (string, error) {
	b, err := io.ReadAll(c.r)
	return string(b), err
}

// logBuffer is a concurrency-safe log sink.
type logBuffer = testenv.Buffer

// debugLogger logs everything as JSON to w.
func debugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond (bounded) and fails when it never holds.
var waitFor = testenv.WaitFor

// signedToken is token with an issue time (none when iat is zero).
func signedToken(t testing.TB, a *streamauth.JWTAuthenticator, sub, tid string, iat, exp time.Time) string {
	t.Helper()
	claims := streamauth.Claims{Tenant: tid}
	claims.Subject = sub
	claims.ExpiresAt = jwt.NewNumericDate(exp)
	if !iat.IsZero() {
		claims.IssuedAt = jwt.NewNumericDate(iat)
	}
	tok, err := a.Sign(claims)
	require.NoError(t, err)
	return tok
}
