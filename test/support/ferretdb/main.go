// Command ferretdb-test runs FerretDB v1 as a MongoDB-wire server for this
// project's tests and benchmarks. The released cmd/ferretdb panics when built
// with `go install` because build/version/version.txt is not in the module, so
// we run the embeddable package instead.
//
// -handler sqlite (default; the tests) keeps its databases in -dir.
// -handler postgresql (bench/postgres.ts) stores them in the PostgreSQL
// database named by -postgresql-url, e.g.
// postgres://postgres@127.0.0.1:5433/ferretdb?pool_max_conns=250
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	handler := flag.String("handler", "sqlite", `backend handler: "sqlite" or "postgresql"`)
	dir := flag.String("dir", "", "directory for the SQLite databases (required for -handler sqlite)")
	pgURL := flag.String("postgresql-url", "", "PostgreSQL URL (required for -handler postgresql)")
	flag.Parse()

	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *addr},
		Handler:  *handler,
	}
	switch *handler {
	case "sqlite":
		if *dir == "" {
			fmt.Fprintln(os.Stderr, "ferretdb-test: -dir is required for -handler sqlite")
			os.Exit(2)
		}
		cfg.SQLiteURL = "file:" + *dir + "/"
	case "postgresql":
		if *pgURL == "" {
			fmt.Fprintln(os.Stderr, "ferretdb-test: -postgresql-url is required for -handler postgresql")
			os.Exit(2)
		}
		cfg.PostgreSQLURL = *pgURL
	default:
		fmt.Fprintln(os.Stderr, "ferretdb-test: unknown -handler", *handler)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	f, err := ferretdb.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-test:", err)
		os.Exit(1)
	}
	fmt.Println("ferretdb-test: listening on", *addr, "handler", *handler)
	f.Run(ctx)
}
