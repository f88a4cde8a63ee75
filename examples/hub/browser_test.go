package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chromiumPath finds a Chromium binary. The test is skipped only when none
// is installed and CI is not set; in CI (which installs the Debian package
// chromium, see .ci/run) a missing browser fails the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI is set but no Chromium (chromium, chromium-browser, google-chrome) is on PATH; .ci/run installs the Debian package chromium")
	}
	t.Skip("browser test skipped: no Chromium on PATH (apt-get install chromium); with CI set it fails instead")
	return ""
}

// streamOutcome is a JavaScript expression for chromedp.Poll: it is falsy
// while the page waits for the preview.created event, then names what
// happened first: "event", or the state that ended the stream.
const streamOutcome = `(() => {
  if (document.querySelector('#events li[data-type="preview.created"]')) { return "event"; }
  const s = document.getElementById("stream-state").dataset.state;
  if (s === "ended" || s === "refused") { return s + ":" + document.getElementById("stream-state").textContent; }
  const out = document.getElementById("create-out").textContent;
  if (out !== "" && !out.startsWith("201")) { return "create:" + out; }
  return false;
})()`

// TestBrowserDemoPage drives the demo page at / in headless Chromium as a
// person would: paste a short-lived token, connect the live stream, create
// a preview, see the preview.created event arrive through the page's
// EventSource, see the auth_expired end, then open the preview link.
func TestBrowserDemoPage(t *testing.T) {
	chromium := chromiumPath(t)
	a, base := newTestApp(t)
	start := time.Now()

	// The whole browser session is bounded: at the deadline the allocator
	// context ends and chromedp stops Chromium.
	bctx, cancelBound := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelBound()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(bctx, opts...)
	// cancelAlloc kills Chromium if it is still running and waits for it.
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	defer func() {
		// Close the browser gracefully and wait for it to exit, so no
		// process or goroutine outlives the test (goleak in TestMain).
		if err := chromedp.Cancel(ctx); err != nil && bctx.Err() == nil {
			t.Logf("closing the browser: %v", err)
		}
		cancel()
	}()

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
	), "start the browser and load the demo page")
	// step bounds one step, so that a step that hangs fails with the
	// browser still up (for the dump below) rather than at the deadline.
	step := func(d time.Duration) context.Context {
		sctx, cancel := context.WithTimeout(ctx, d)
		t.Cleanup(cancel)
		return sctx
	}
	// From here the browser runs; on failure, show what the page showed
	// (this runs before the browser is closed).
	defer func() {
		if !t.Failed() {
			return
		}
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		text, err := chromedp.Run(dctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Logf("the page at failure (err %v):\n%s", err, text)
	}()
	t.Logf("browser up and page loaded after %v", time.Since(start).Round(time.Millisecond))
	// The strict CSP admits the page's inline style and script by hash:
	// the style applies (body max-width 60rem) and the script ran (it wires
	// the buttons; the steps below need it).
	maxWidth, err := chromedp.Run(step(20*time.Second), chromedp.Evaluate[string](`getComputedStyle(document.body).maxWidth`))
	require.NoError(t, err)
	assert.Equal(t, "960px", maxWidth, "the inline style is allowed by the CSP")

	// The token must outlive the steps up to the preview event and then
	// expire. A slow machine may need longer: each attempt doubles the
	// lifetime (bounded: 3 attempts).
	ttl := 4 * time.Second
	for attempt := 1; ; attempt++ {
		tok, err := a.auth.mint("alice", "acme", nil, ttl)
		require.NoError(t, err)
		stepStart := time.Now()
		require.NoError(t, chromedp.Do(step(20*time.Second),
			chromedp.Navigate(base+"/"),
			chromedp.SetValue(chromedp.ID("token"), tok),
			chromedp.Click(chromedp.ID("connect")),
			// The page says "connected" once the stream's hello arrived:
			// from then on it sees every event of its tenant.
			chromedp.WaitVisible(chromedp.CSS(`#stream-state[data-state="connected"], #stream-state[data-state="refused"]`)),
			chromedp.Click(chromedp.ID("create")),
		), "attempt %d: connect and create", attempt)
		outcome, err := chromedp.Run(step(25*time.Second), chromedp.Poll[string](streamOutcome,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
		require.NoError(t, err, "attempt %d: wait for the event", attempt)
		t.Logf("attempt %d (token ttl %v): %q after %v", attempt, ttl, outcome, time.Since(stepStart).Round(time.Millisecond))
		if outcome == "event" {
			break
		}
		require.Less(t, attempt, 3, "the token expired before the preview event arrived three times; last outcome %q", outcome)
		ttl *= 2
	}

	// The create response and the link to open the preview.
	created, err := chromedp.Run(step(20*time.Second), chromedp.TextContent(chromedp.ID("create-out")))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(created, "201"), created)
	require.NoError(t, chromedp.Do(step(20*time.Second), chromedp.WaitVisible(chromedp.ID("open"))))
	open, err := chromedp.Run(step(20*time.Second), chromedp.AttributeValue(chromedp.ID("open"), "href"))
	require.NoError(t, err)
	link, err := url.Parse(base + open.Value)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(link.Path, "/preview/pv_"), link.Path)
	assert.NotEmpty(t, link.Query().Get("preview_token"))
	previewID := strings.TrimSuffix(strings.TrimPrefix(link.Path, "/preview/"), "/")

	event, err := chromedp.Run(step(20*time.Second), chromedp.TextContent(chromedp.CSS(`#events li[data-type="preview.created"]`)))
	require.NoError(t, err)
	assert.Contains(t, event, previewID, "the event names the created preview")

	// The token expires: the server's last event is auth_expired, and the
	// page shows the end (and does not reconnect).
	require.NoError(t, chromedp.Do(step(ttl+20*time.Second),
		chromedp.WaitVisible(chromedp.CSS(`#stream-state[data-state="ended"][data-reason="auth_expired"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#events li[data-type="auth_expired"]`)),
	), "wait for the auth_expired end")
	state, err := chromedp.Run(step(20*time.Second), chromedp.TextContent(chromedp.ID("stream-state")))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(state, "ended: auth_expired"), state)
	t.Logf("auth_expired shown after %v", time.Since(start).Round(time.Millisecond))

	// Open the preview (the link's target, in this tab): the preview token
	// in the query is exchanged for a cookie and the page is served.
	require.NoError(t, chromedp.Do(step(20*time.Second),
		chromedp.Navigate(link.String()),
		chromedp.WaitVisible(chromedp.CSS("h1")),
	), "open the preview")
	heading, err := chromedp.Run(step(20*time.Second), chromedp.TextContent(chromedp.CSS("h1")))
	require.NoError(t, err)
	loc, err := chromedp.Run(step(20*time.Second), chromedp.Location())
	require.NoError(t, err)
	assert.NotContains(t, loc, "preview_token", "the token left the address bar")
	assert.Equal(t, fmt.Sprintf("Preview %s", previewID), heading)
	t.Logf("done after %v", time.Since(start).Round(time.Millisecond))
}
