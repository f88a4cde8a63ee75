package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The reading of docs/walkthrough.md for TestWalkthrough: its fenced
// blocks, their commands and expected outputs, and the masks applied to
// both sides before they are compared. The rules are stated at the end of
// the page ("How this page is tested"); keep the two in step.

// Info strings of the walkthrough's fenced blocks.
const (
	wtConsole = "console"       // run in the main session
	wtRedis   = "console redis" // run in the Redis session, with REDIS_URL
	wtServer  = "sh server"     // shell 1: run in the background
)

// wtCommand is one `$ ` line of a console block and the output shown
// under it.
type wtCommand struct {
	Line int    // line of the `$ ` in the document, from 1
	Text string // the command as a user types it
	Want []string
}

// wtDoc is the walkthrough as the test runs it.
type wtDoc struct {
	Server    string // the body of the sh server block
	HasServer bool
	Sessions  map[string][]wtCommand
}

// parseWalkthrough reads the fenced blocks of the document. A console
// block with an info string other than wtConsole or wtRedis, a second
// server block, or a console block whose first line is not a command is an
// error, so no block meant to run is silently shown only.
func parseWalkthrough(doc string) (wtDoc, error) {
	d := wtDoc{Sessions: map[string][]wtCommand{}}
	lines := strings.Split(doc, "\n")
	for i := 0; i < len(lines); i++ {
		info, ok := strings.CutPrefix(lines[i], "```")
		if !ok {
			continue
		}
		start := i
		info = strings.Join(strings.Fields(info), " ")
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			return d, fmt.Errorf("line %d: the block does not end", start+1)
		}
		switch {
		case info == wtServer:
			if d.HasServer {
				return d, fmt.Errorf("line %d: a second %q block", start+1, info)
			}
			d.Server, d.HasServer = strings.Join(body, "\n"), true
		case info == wtConsole || info == wtRedis:
			cmds, err := parseConsole(body, start+2)
			if err != nil {
				return d, err
			}
			d.Sessions[info] = append(d.Sessions[info], cmds...)
		case strings.HasPrefix(info, "console"):
			return d, fmt.Errorf("line %d: unknown console block %q (want %q or %q)", start+1, info, wtConsole, wtRedis)
		}
	}
	return d, nil
}

// parseConsole splits a console block's body, whose first line is line
// first of the document, into commands. A command ending in a backslash
// continues on the next line.
func parseConsole(body []string, first int) ([]wtCommand, error) {
	var cmds []wtCommand
	for j := 0; j < len(body); j++ {
		text, ok := strings.CutPrefix(body[j], "$ ")
		if !ok {
			if len(cmds) == 0 {
				return nil, fmt.Errorf("line %d: a console block starts with a `$ ` command", first+j)
			}
			cmds[len(cmds)-1].Want = append(cmds[len(cmds)-1].Want, body[j])
			continue
		}
		c := wtCommand{Line: first + j, Text: text}
		for strings.HasSuffix(c.Text, "\\") && j+1 < len(body) {
			j++
			c.Text += "\n" + body[j]
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

// wtMasks replace what differs from run to run, in this order.
var wtMasks = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`eyJ[A-Za-z0-9_.-]*…?`), "<token>"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`), "<time>"},
	{regexp.MustCompile(`\b\d{8}T\d{6}Z\b`), "<kid>"},
	{regexp.MustCompile(`[0-9a-f]{24}`), "<id>"},
	{regexp.MustCompile(`(?m)^Date: .*$`), "Date: <date>"},
	{regexp.MustCompile(`Content-Length: \d+`), "Content-Length: <n>"},
	{regexp.MustCompile(`Max-Age=\d+`), "Max-Age=<n>"},
}

// wtIdle is what a stream sends on a timer rather than on an event: a
// heartbeat event (every HUB_STREAM_HEARTBEAT of the hub's clock) or a
// keep-alive comment (after STREAMAUTH_KEEPALIVE idle), with its blank
// line.
var wtIdle = regexp.MustCompile(`(?m)^(event: heartbeat\ndata: .*|: keep-alive)\n(\n|$)`)

// maskOutput returns out with the masks applied, heartbeats and
// keep-alives dropped, CRLF line ends (HTTP headers) made LF and trailing
// blank lines removed.
func maskOutput(out string) string {
	out = strings.ReplaceAll(out, "\r\n", "\n")
	out = wtIdle.ReplaceAllString(out, "")
	for _, m := range wtMasks {
		out = m.re.ReplaceAllString(out, m.repl)
	}
	return strings.TrimRight(out, "\n")
}

// outputMatches reports whether the masked output got matches the masked
// expected output want, where a `…` in want matches any text on its line.
func outputMatches(want, got string) bool {
	if !strings.Contains(want, "…") {
		return want == got
	}
	parts := strings.Split(want, "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`^` + strings.Join(parts, `.*`) + `$`).MatchString(got)
}

func TestWalkthroughMasks(t *testing.T) {
	a := maskOutput("HTTP/1.1 200 OK\nDate: Fri, 27 Nov 2026 03:12:55 GMT\nContent-Length: 710\n\n" +
		`{"preview_id":"pv_8f81343f485f47ba7105507a","token":"eyJhbGciOiJIUzI1NiIs.eyJzdWIi.c2ln","at":"2026-11-27T03:12:55.537020937Z","kid":"20261127T000000Z"}` +
		"\nevent: heartbeat\ndata: {\"time\":\"2026-11-27T03:13:05Z\"}\n\n: keep-alive\n\nevent: auth_expired\n\n")
	b := maskOutput("HTTP/1.1 200 OK\nDate: Sat, 28 Nov 2026 13:00:01 GMT\nContent-Length: 708\n\n" +
		`{"preview_id":"pv_0123456789abcdef01234567","token":"eyJhbGciOiJIUzI1NiIs…","at":"2026-11-28T13:00:01.5Z","kid":"20261128T000000Z"}` +
		"\nevent: auth_expired\n")
	assert.Equal(t, a, b)
	assert.Contains(t, a, `"preview_id":"pv_<id>","token":"<token>","at":"<time>","kid":"<kid>"`)
	assert.NotEqual(t, maskOutput(`{"status":"ready"}`), maskOutput(`{"status":"not_ready"}`), "a value that is not masked differs")

	assert.True(t, outputMatches(`{"addrs":[…],"mode":"public"}`, `{"addrs":["8.8.8.8"],"mode":"public"}`))
	assert.False(t, outputMatches(`{"addrs":[…],"mode":"public"}`, `{"addrs":[],"mode":"allowlist"}`))
	assert.False(t, outputMatches("a…", "a\nb"), "… stays on its line")
}

func TestWalkthroughParse(t *testing.T) {
	doc := "intro\n```sh server\nhub\n```\n```console\n$ echo a \\\n  b\na b\n$ true\n```\n```sh\nshown only\n```\n```console redis\n$ echo r\nr\n\n```\n"
	d, err := parseWalkthrough(doc)
	require.NoError(t, err)
	assert.Equal(t, "hub", d.Server)
	assert.Equal(t, []wtCommand{{Line: 6, Text: "echo a \\\n  b", Want: []string{"a b"}}, {Line: 9, Text: "true"}}, d.Sessions[wtConsole])
	assert.Equal(t, []wtCommand{{Line: 15, Text: "echo r", Want: []string{"r", ""}}}, d.Sessions[wtRedis])

	for _, bad := range []string{"```console\nno prompt\n```\n", "```console reddis\n$ true\n```\n", "```console\n$ true\n", "```sh server\n```\n```sh server\n```\n"} {
		_, err := parseWalkthrough(bad)
		assert.Error(t, err, bad)
	}
}
