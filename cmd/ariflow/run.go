package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/controller"
	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/webhook"
	"github.com/ariflow/ariflow/policy"
	"github.com/ariflow/ariflow/store"
)

func runRun(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "ariflow: configuration: %s\n", oneLine(err))
		return 2
	}
	log := newLogger(cfg, stderr)
	if err := serve(cfg, log); err != nil {
		fmt.Fprintf(stderr, "ariflow: %s\n", newScrubber(cfg.secrets()).String(oneLine(err)))
		return 1
	}
	return 0
}

func newLogger(cfg *config, w io.Writer) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(w)
	lvl, _ := logrus.ParseLevel(cfg.LogLevel)
	log.SetLevel(lvl)
	if cfg.LogFormat == "json" {
		log.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	} else {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "15:04:05.000", DisableColors: true})
	}
	log.SetFormatter(scrubFormatter{log.Formatter, newScrubber(cfg.secrets())}) // no secret in any line
	return log
}

func loadFlows(cfg *config) (*flows.Set, error) {
	return flows.LoadFiles(flowOptions(cfg), cfg.FlowsPath)
}

func flowOptions(cfg *config) flows.LoadOptions {
	return flows.LoadOptions{DefaultRegion: cfg.Region, EndpointTechs: cfg.dialPolicy().EndpointTechs}
}

func serve(cfg *config, log *logrus.Logger) error {
	if os.Getenv("GOGC") == "" {
		// The heap is small (tens of MB at hundreds of calls) and churns
		// with every event; collecting less often buys CPU for little memory.
		debug.SetGCPercent(400)
	}
	set, err := loadFlows(cfg)
	if err != nil {
		return fmt.Errorf("flows in %s are invalid: %w", cfg.FlowsPath, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	cctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	info, err := controller.Check(cctx, cfg.ARIURL, cfg.ARIUser, cfg.ARIPassword)
	cancel()
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rdb, leaseRDB, err := connectRedis(ctx, cfg, log, reg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	defer leaseRDB.Close()
	pbx := cfg.PBXID
	if pbx == "" {
		pbx = info.EntityID
	}
	ns := store.Namespace(cfg.App, pbx)
	log.WithFields(cfg.redacted()).WithFields(logrus.Fields{"asterisk": info.Version, "namespace": ns, "flows_loaded": len(set.Flows)}).Info("ariflow starting")

	app, closeObs, err := newApp(ctx, cfg, log, redisClients{rdb, leaseRDB}, reg, ns, set)
	if err != nil {
		return err
	}
	defer closeObs() // after app.Wait: the last calls' spans and records go too
	reload := reloader(cfg, app, log)
	defer reloadOnHUP(reload)()

	srv := &http.Server{Addr: cfg.HTTPAddr, Handler: httpHandler(app, rdb, reg, reload, cfg.AdminToken), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("health listener: %w", err)
	}
	go func() { _ = srv.Serve(ln) }()

	runUntil(ctx, cfg, app, log)
	shutdownCtx, c2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer c2()
	_ = srv.Shutdown(shutdownCtx)
	log.Info("stopped")
	return nil
}

// connectRedis makes the Redis clients, their round trips counted in reg,
// and proves they answer: one for the calls, and a small one of its own
// for the leadership lease, so that a renewal never queues behind the
// calls' traffic for a connection of the pool (a slow Redis makes every
// request hold its connection longer).
func connectRedis(ctx context.Context, cfg *config, log *logrus.Logger, reg prometheus.Registerer) (rdb, lease redis.UniversalClient, err error) {
	redis.SetLogger(redisLogger{log})
	ropts, _ := cfg.redisOptions() // checked by parseConfig
	lopts := *ropts
	lopts.PoolSize, lopts.MinIdleConns = 2, 1
	rdb, lease = redis.NewUniversalClient(ropts), redis.NewUniversalClient(&lopts)
	roundTrips := prometheus.NewCounter(prometheus.CounterOpts{Name: "ariflow_redis_roundtrips_total", Help: "Requests sent to Redis (a pipeline is one)."})
	reg.MustRegister(roundTrips)
	for _, c := range []redis.UniversalClient{rdb, lease} {
		c.AddHook(countHook{roundTrips})
		cctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
		err = c.Ping(cctx).Err()
		cancel()
		if err != nil {
			rdb.Close()
			lease.Close()
			return nil, nil, fmt.Errorf("Redis at %s: %w", redactURL(cfg.RedisURL), err)
		}
	}
	return rdb, lease, nil
}

// redisClients are the process's Redis clients: calls, lease.
type redisClients struct{ calls, lease redis.UniversalClient }

// newApp wires the controller to Redis (records, lease, dial-out counters
// shared by the fleet), the webhook client, tracing and call records;
// closeObs delivers the last spans and records.
func newApp(ctx context.Context, cfg *config, log *logrus.Logger, clients redisClients, reg *prometheus.Registry,
	ns string, set *flows.Set) (app *controller.App, closeObs func(), err error) {
	rdb := clients.calls
	fbCtx, fbExt, fbPrio, _ := fallbackTarget(cfg.Fallback)
	web, err := webhook.New(cfg.webhookOptions())
	if err != nil {
		return nil, nil, fmt.Errorf("webhook client: %w", err)
	}
	counters := policy.NewRedisCounters(rdb, "ariflow:policy:")
	gate := policy.NewGate(cfg.dialPolicy(), counters, counters)
	elector := store.NewRedis(clients.lease, ns, 4*time.Hour)
	store := store.NewRedis(rdb, ns, 4*time.Hour)
	tracer, err := newTracer(ctx, cfg, log, reg)
	if err != nil {
		return nil, nil, err
	}
	records := newRecords(cfg, rdb, web, reg, log)
	app = controller.New(controller.Config{
		App: cfg.App, URL: cfg.ARIURL, User: cfg.ARIUser, Password: cfg.ARIPassword,
		DialTemplate: cfg.DialTemplate, DialVia: flows.DialVia(cfg.DialVia), DefaultRegion: cfg.Region, DTMFDelay: cfg.DTMFDelay, LegAhead: cfg.LegAhead, PBXBackAlways: cfg.PBXBackAlways,
		Fallback: controller.DialplanTarget{Context: fbCtx, Extension: fbExt, Priority: fbPrio},
		LeaseTTL: cfg.LeaseTTL, Gate: gate, Webhooks: web, MaxExternal: cfg.MaxExternal, FlowOptions: flowOptions(cfg),
		Tracer: tracer, TraceInviteHeader: cfg.TraceInviteHeader, Records: records,
	}, store, elector, set, log, controller.NewMetrics(reg))
	return app, func() { closeObserve(tracer, records, log) }, nil
}

// reloader loads the flows again and swaps them in; flows that fail to
// load leave the running ones serving. One reload at a time.
func reloader(cfg *config, app *controller.App, log *logrus.Logger) func() error {
	var mu sync.Mutex
	return func() error {
		mu.Lock()
		defer mu.Unlock()
		s, err := loadFlows(cfg)
		if err != nil {
			log.WithError(err).Error("reload rejected; the previous flows keep serving")
			return err
		}
		app.SetFlows(s)
		log.WithField("flows_loaded", len(s.Flows)).Info("flows reloaded")
		return nil
	}
}

// reloadOnHUP reloads the flows on every SIGHUP until stop is called.
func reloadOnHUP(reload func() error) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			_ = reload()
		}
	}()
	return func() { signal.Stop(hup) }
}

// runUntil runs the app until ctx ends (a signal), then drains it: no new
// calls, and those in progress get DrainTimeout to end. Calls still
// running then stay in Redis, and in Stasis, for the next process.
func runUntil(ctx context.Context, cfg *config, app *controller.App, log *logrus.Logger) {
	runCtx, cancelRun := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = app.Run(runCtx)
		close(done)
	}()

	<-ctx.Done()
	log.WithField("active_calls", app.ActiveCalls()).Info("stopping: no new calls")
	app.Drain()
	if cfg.DrainTimeout > 0 {
		deadline := time.Now().Add(cfg.DrainTimeout)
		for app.ActiveCalls() > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	cancelRun()
	<-done
	app.Wait()
}

func httpHandler(app *controller.App, rdb redis.UniversalClient, reg *prometheus.Registry, reload func() error, adminToken string) http.Handler {
	mux := http.NewServeMux()
	// Alive: the process runs, active or standby. A standby is healthy
	// but not ready.
	live := func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok %s\n", app.Role())
	}
	mux.HandleFunc("/healthz", live)
	mux.HandleFunc("/livez", live)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		switch {
		case !app.Active():
			http.Error(w, "standby: another process holds the lease", http.StatusServiceUnavailable)
		case !app.Connected():
			http.Error(w, "ARI websocket not connected", http.StatusServiceUnavailable)
		case rdb.Ping(ctx).Err() != nil:
			http.Error(w, "Redis not reachable", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ready")
		}
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	adminRoutes(mux, adminToken, reload, os.Getenv("ARIFLOW_PPROF") != "") // admin.go: bearer token
	return mux
}

// oneLine folds a multi-line error (a joined list) into one line.
func oneLine(err error) string {
	s := err.Error()
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, ';', ' ')
			continue
		}
		out = append(out, s[i])
	}
	return string(out)
}

// redisLogger sends go-redis's own chatter (pool retries) to debug: the
// errors that matter come back from the calls and are logged there.
type redisLogger struct{ log *logrus.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debugf("redis: "+format, v...)
}

// countHook counts round trips to Redis: one per command or pipeline.
type countHook struct{ c prometheus.Counter }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.c.Inc()
		return next(ctx, cmd)
	}
}

func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.c.Inc()
		return next(ctx, cmds)
	}
}
