// Command streamload measures what streamauth costs per stream: it holds N
// concurrent unauthenticated ("bare") SSE streams, then N authenticated
// streamauth SSE streams, in one server process, and reports the heap, stack
// and RSS per stream of each and the difference. The authenticated streams'
// tokens all expire at the same second; the program then reports how long
// after exp each stream's final "event: auth_expired" reached its client.
//
// The clients run in a child process (this binary re-executed), so the
// server's memory figures contain only server-side state and each process
// stays under the file-descriptor limit.
//
//	go run ./examples/streamload            # 10,000 streams of each kind
//	go run ./examples/streamload -n 2000 -json
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	if os.Getenv(clientEnv) != "" {
		if err := runClient(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "streamload client:", err)
			os.Exit(1)
		}
		return
	}
	var cfg config
	flag.IntVar(&cfg.N, "n", 10_000, "concurrent streams of each kind")
	flag.DurationVar(&cfg.Lead, "lead", 20*time.Second, "token lifetime left after the streams are opened and measured, at least")
	flag.IntVar(&cfg.Concurrency, "c", 200, "client dial concurrency")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	flag.Parse()
	res, err := run(cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "streamload:", err)
		os.Exit(1)
	}
	if *asJSON {
		res.writeJSON(os.Stdout)
	} else {
		res.writeTable(os.Stdout)
	}
}
