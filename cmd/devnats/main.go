// Command devnats runs an embedded NATS server for local clusters (`make run-cluster`), so
// that no NATS installation is needed. Not for production: no auth, no persistence.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devnats:", err)
		os.Exit(1)
	}
}

func run() error {
	host := flag.String("host", "127.0.0.1", "listen host")
	port := flag.Int("port", 14222, "listen port")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := natsserver.NewServer(&natsserver.Options{Host: *host, Port: *port, NoSigs: true})
	if err != nil {
		return err
	}
	s.ConfigureLogger()
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("not ready on %s:%d within 10s", *host, *port)
	}
	fmt.Printf("devnats: listening on nats://%s:%d\n", *host, *port)
	<-ctx.Done()
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}
