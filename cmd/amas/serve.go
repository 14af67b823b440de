package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/amas-eye/amas/app"
	"github.com/amas-eye/amas/config"
)

// serverFlags parses the server settings shared by serve, migrate, user and token.
func serverFlags(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*config.Server, *flag.FlagSet, error) {
	var cfg config.Server
	fs := flag.NewFlagSet("amas "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.Flags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := config.Parse(fs, args, os.Getenv); err != nil {
		return nil, nil, err
	}
	return &cfg, fs, nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, _, err := serverFlags("serve", args, stderr, nil)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
		defer cancel()
		_ = a.Stop(stopCtx)
		return err
	}
	printBanner(stdout, a)
	log.Info("amas started", "version", app.Version, "http", a.HTTPAddr(), "put", a.PutAddr(),
		"otlp_grpc", a.OTLPGRPCAddr(), "otlp_http", a.OTLPHTTPAddr(), "zipkin", a.ZipkinAddr())
	<-ctx.Done()
	log.Info("shutting down: flushing accepted points", "grace", cfg.ShutdownGrace)
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	return a.Stop(stopCtx)
}

// printBanner tells the operator where everything is, and on a fresh database the
// credentials that were just created (shown once, never logged).
func printBanner(w io.Writer, a *app.App) {
	web := "http://" + displayAddr(a.HTTPAddr())
	fmt.Fprintf(w, "\nAmas %s is running\n", app.Version)
	fmt.Fprintf(w, "  web app and GraphQL:  %s/  (GraphQL %s/graphql, playground %s/graphiql)\n", web, web, web)
	fmt.Fprintf(w, "  OpenTSDB HTTP put:    %s/api/put\n", web)
	if put := a.PutAddr(); put != "" {
		fmt.Fprintf(w, "  OpenTSDB telnet put:  %s\n", displayAddr(put))
	}
	if grpc := a.OTLPGRPCAddr(); grpc != "" {
		fmt.Fprintf(w, "  OTLP gRPC:            %s\n", displayAddr(grpc))
	}
	if otlpHTTP := a.OTLPHTTPAddr(); otlpHTTP != "" {
		fmt.Fprintf(w, "  OTLP HTTP:            http://%s/v1/traces, /v1/metrics (Zipkin: /api/v2/spans)\n", displayAddr(otlpHTTP))
	}
	if zipkin := a.ZipkinAddr(); zipkin != "" {
		fmt.Fprintf(w, "  Zipkin:               http://%s/api/v2/spans\n", displayAddr(zipkin))
	}
	if b := a.Bootstrap; b != nil {
		fmt.Fprintf(w, "\nFirst start: created these credentials (shown only now):\n")
		fmt.Fprintf(w, "  admin user:    %s\n  password:      %s\n  ingest token:  %s\n", b.AdminUser, b.AdminPassword, b.IngestToken)
	}
	fmt.Fprintln(w)
}

// displayAddr turns a wildcard listen address into one a browser can open.
func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + port
}

func version(w io.Writer) error {
	fmt.Fprintf(w, "amas %s\n", app.Version)
	return nil
}
