package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// afterLoad adds what the run measures once the HTTP load is over: the
// in-process allocations and the peer table.
func afterLoad(ctx context.Context, cfg config, res *Result, secret []byte, tmp string, logw io.Writer) error {
	if cfg.AllocRequests > 0 {
		fmt.Fprintf(logw, "loadtest: allocations: %d in-process requests per scenario and side\n", cfg.AllocRequests)
		rows, err := measureAllocs(ctx, secret, cfg.scenarios, cfg.AllocRequests)
		if err != nil {
			return err
		}
		res.AllocRequests, res.Allocs = cfg.AllocRequests, rows
	}
	if cfg.Peers {
		p, err := runPeers(ctx, cfg.Redis, tmp, logw)
		if err != nil {
			fmt.Fprintln(logw, "loadtest: peers:", err)
			res.Notes = append(res.Notes, "peers: not measured ("+firstLine(err.Error())+"); run them alone: "+peersHint)
		} else {
			res.Peers, res.peersMarkdown = p.JSON, p.Markdown
		}
	}
	return nil
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
