package main

import (
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"
)

// adminRoutes registers the endpoints that change or expose the process:
// POST /-/reload and, with pprofOn, /debug/pprof/. Both need
// "Authorization: Bearer <token>"; without a token configured they are
// refused outright (SIGHUP still reloads). /healthz, /readyz and /metrics
// are registered elsewhere and stay open.
func adminRoutes(mux *http.ServeMux, token string, reload func() error, pprofOn bool) {
	mux.Handle("/-/reload", requireToken(token, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		if err := reload(); err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		fmt.Fprintln(w, "reloaded")
	})))
	if pprofOn {
		// For profiling under load.
		mux.Handle("/debug/pprof/", requireToken(token, http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/profile", requireToken(token, http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/trace", requireToken(token, http.HandlerFunc(pprof.Trace)))
	}
}

// requireToken lets a request through only with the bearer token,
// compared in constant time. Anything else gets 401 (403 when no token is
// configured at all) and next never runs.
func requireToken(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token == "" {
			http.Error(w, "admin endpoints are disabled: start ariflow with -admin-token-file (ARIFLOW_ADMIN_TOKEN_FILE); SIGHUP still reloads", http.StatusForbidden)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ariflow"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// runReload implements "ariflow reload [-http-addr host:port]
// [-admin-token-file FILE]": it sends the token from the same file the
// running ariflow reads.
func runReload(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http-addr", envDefault("ARIFLOW_HTTP_ADDR", "127.0.0.1:8090"), "address of the running ariflow ($ARIFLOW_HTTP_ADDR)")
	tokenFile := fs.String("admin-token-file", envDefault("ARIFLOW_ADMIN_TOKEN_FILE", ""), "file with the admin bearer token ($ARIFLOW_ADMIN_TOKEN_FILE)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ariflow reload [-http-addr host:port] [-admin-token-file FILE]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+*addr+"/-/reload", nil)
	if err != nil {
		fmt.Fprintf(stderr, "ariflow: reload: %v\n", err)
		return 2
	}
	if *tokenFile != "" {
		tok, err := readSecretFile(*tokenFile, "admin token", 1)
		if err != nil {
			fmt.Fprintf(stderr, "ariflow: reload: %v\n", err)
			return 2
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	// Its own transport, not http.DefaultTransport: no proxy from the
	// environment for a request that carries the admin token.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "ariflow: reload: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "ariflow: reload rejected (%s):\n%s", resp.Status, body)
		return 1
	}
	fmt.Fprint(stdout, string(body))
	return 0
}
