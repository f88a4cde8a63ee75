package streamauth_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/streamauth"
)

func TestConstructorsValidate(t *testing.T) {
	t.Parallel()
	_, err := streamauth.NewJWT([]byte("short"))
	assert.Error(t, err)
	_, err = streamauth.NewRegistry(streamauth.WithMaxStreamsPerUser(-1))
	assert.Error(t, err)
	reg := newRegistry(t)
	auth := newAuth(t)
	_, err = streamauth.SSE(nil, reg, streamauth.ForwardSSE)
	assert.Error(t, err)
	_, err = streamauth.SSE(auth, nil, streamauth.ForwardSSE)
	assert.Error(t, err)
	_, err = streamauth.SSE(auth, reg, nil)
	assert.Error(t, err)
	_, err = streamauth.WebSocket(auth, reg, nil)
	assert.Error(t, err)
	_, err = streamauth.SSE(auth, reg, streamauth.ForwardSSE, streamauth.WithWriteTimeout(0))
	assert.Error(t, err)
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	pr := prometheus.NewRegistry()
	auth := newAuth(t)
	reg := newRegistry(t, streamauth.WithRegisterer(pr))
	url := sseServer(t, auth, reg, streamauth.ForwardSSE)
	c := httpClient(t)
	sc := openSSE(t, c, url, token(t, auth, "u1", "t1", time.Now().Add(time.Hour)))
	require.Equal(t, http.StatusOK, sc.resp.StatusCode)
	openSSE(t, c, url, "") // 401
	waitFor(t, "stream", func() bool { return reg.Status().Active == 1 })
	assert.Equal(t, 1.0, metricValue(t, pr, "hardening_streamauth_streams", "kind", "sse"))
	assert.Equal(t, 0.0, metricValue(t, pr, "hardening_streamauth_streams", "kind", "websocket"))
	_, err := reg.Revoke(context.Background(), streamauth.Selector{StreamID: reg.Streams()[0].ID})
	require.NoError(t, err)
	assert.Equal(t, 1.0, metricValue(t, pr, "hardening_streamauth_dropped_total", "reason", "revoked"))
	assert.Equal(t, 1.0, metricValue(t, pr, "hardening_streamauth_auth_rejected_total", "reason", "missing_token"))
	_, err = streamauth.NewRegistry(streamauth.WithRegisterer(pr))
	assert.Error(t, err, "registering twice is an error")
}

// metricValue returns the value of name{label=value} gathered from pr.
func metricValue(t *testing.T, pr *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := pr.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if m.GetGauge() != nil {
						return m.GetGauge().GetValue()
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("%s{%s=%q} not found", name, label, value)
	return 0
}
