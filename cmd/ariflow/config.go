package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/policy"
)

// config is `ariflow run`'s configuration: flags, each with an ARIFLOW_*
// environment variable as its default.
type config struct {
	ARIURL          string
	ARIUser         string
	ARIPassword     string
	ARIPasswordFile string
	App             string
	RedisURL        string
	FlowsPath       string
	LogLevel        string
	LogFormat       string
	HTTPAddr        string
	DialTemplate    string
	DialVia         string
	Region          string
	DTMFDelay       time.Duration
	LegAhead        bool
	PBXBackAlways   bool
	ConnectTimeout  time.Duration
	DrainTimeout    time.Duration
	// Dependability (see README, High availability).
	Fallback string // "context[,extension[,priority]]"
	PBXID    string
	LeaseTTL time.Duration

	// Security settings (security.go): files named by flags, and what was
	// read from them at start.
	DialPolicyFile    string
	AdminTokenFile    string
	RedisPasswordFile string
	WebhookSecretFile string
	WebhookAllowHosts string
	WebhookCAFile     string
	Policy            *policy.Policy // nil: policy.Default()
	AdminToken        string
	RedisPassword     string
	WebhookSecret     string
	// MaxExternal is -max-external-bytes (controller.Config.MaxExternal).
	MaxExternal int
	maxExternal string // as given, checked by loadSecurity

	observeConfig // traces and call records (observe.go)
}

// envDefault returns $name or def.
func envDefault(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) (time.Duration, error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a duration (like 500ms or 10s)", name, v)
	}
	return d, nil
}

func envBool(name string, def bool) (bool, error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def, fmt.Errorf("%s=%q is not true or false", name, v)
	}
	return b, nil
}

func parseConfig(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("ariflow run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.ARIURL, "ari-url", envDefault("ARIFLOW_ARI_URL", "http://127.0.0.1:8088/ari"), "ARI base URL ($ARIFLOW_ARI_URL)")
	fs.StringVar(&c.ARIUser, "ari-user", envDefault("ARIFLOW_ARI_USER", "ariflow"), "ARI user ($ARIFLOW_ARI_USER)")
	fs.StringVar(&c.ARIPasswordFile, "ari-password-file", envDefault("ARIFLOW_ARI_PASSWORD_FILE", ""), "file holding the ARI password ($ARIFLOW_ARI_PASSWORD_FILE); or set $ARIFLOW_ARI_PASSWORD")
	fs.StringVar(&c.App, "app", envDefault("ARIFLOW_APP", "ariflow"), "Stasis application name ($ARIFLOW_APP)")
	fs.StringVar(&c.RedisURL, "redis-url", envDefault("ARIFLOW_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL ($ARIFLOW_REDIS_URL)")
	fs.StringVar(&c.FlowsPath, "flows", envDefault("ARIFLOW_FLOWS", "flows/examples"), "flow directory or file ($ARIFLOW_FLOWS)")
	fs.StringVar(&c.LogLevel, "log-level", envDefault("ARIFLOW_LOG_LEVEL", "info"), "trace, debug, info, warn or error ($ARIFLOW_LOG_LEVEL); trace adds every ARI request")
	fs.StringVar(&c.LogFormat, "log-format", envDefault("ARIFLOW_LOG_FORMAT", "text"), "text or json ($ARIFLOW_LOG_FORMAT)")
	fs.StringVar(&c.HTTPAddr, "http-addr", envDefault("ARIFLOW_HTTP_ADDR", "127.0.0.1:8090"), "health, metrics and reload address ($ARIFLOW_HTTP_ADDR)")
	fs.StringVar(&c.DialTemplate, "dial-template", envDefault("ARIFLOW_DIAL_TEMPLATE", "PJSIP/{number}@trunk"), "dial string for phone numbers ($ARIFLOW_DIAL_TEMPLATE)")
	fs.StringVar(&c.DialVia, "dial-via", envDefault("ARIFLOW_DIAL_VIA", "ari"), "who carries transfers whose block sets no dial_via: ari (ariflow) or pbx (the PBX's Dial() in [ariflow-dial], for blocks with Connect's settings only) ($ARIFLOW_DIAL_VIA)")
	fs.StringVar(&c.Region, "region", envDefault("ARIFLOW_DEFAULT_REGION", ""), "region (e.g. DE) for numbers without + ($ARIFLOW_DEFAULT_REGION)")
	fs.StringVar(&c.Fallback, "fallback", envDefault("ARIFLOW_FALLBACK", ""), "dialplan context[,extension[,priority]] for callers ariflow cannot serve; empty: apology and hangup ($ARIFLOW_FALLBACK)")
	fs.StringVar(&c.PBXID, "pbx-id", envDefault("ARIFLOW_PBX_ID", ""), "name of this PBX in Redis keys; default Asterisk's entity ID ($ARIFLOW_PBX_ID)")
	c.securityFlags(fs)
	c.observeFlags(fs)
	ahead, err := envBool("ARIFLOW_LEG_AHEAD", true)
	fs.BoolVar(&c.LegAhead, "leg-ahead", ahead, "while a transfer that resumes the caller talks, make the next transfer's leg (not dialled), so that the caller's way back costs no create ($ARIFLOW_LEG_AHEAD)")
	back, berr := envBool("ARIFLOW_PBX_BACK_ALWAYS", false)
	err = errors.Join(err, berr)
	fs.BoolVar(&c.PBXBackAlways, "pbx-back-always", back, "send the caller back to the app after every transfer the PBX's Dial() carries; by default one the call ends with (an agent's, resume off) is ended by the PBX as its far end hangs up ($ARIFLOW_PBX_BACK_ALWAYS)")
	durations := []struct {
		p    *time.Duration
		flag string
		env  string
		def  time.Duration
		help string
	}{
		{&c.DTMFDelay, "dtmf-delay", "ARIFLOW_DTMF_DELAY", 500 * time.Millisecond, "wait after answer before sending DTMF"},
		{&c.ConnectTimeout, "connect-timeout", "ARIFLOW_CONNECT_TIMEOUT", 10 * time.Second, "deadline for reaching ARI and Redis at start"},
		{&c.DrainTimeout, "drain-timeout", "ARIFLOW_DRAIN_TIMEOUT", 0, "on SIGTERM, wait this long for calls to end before leaving them to another process"},
		{&c.LeaseTTL, "lease-ttl", "ARIFLOW_LEASE_TTL", 800 * time.Millisecond, "leadership lease lifetime: a standby takes over about this long after the active dies"},
	}
	for _, d := range durations {
		def, derr := envDuration(d.env, d.def)
		if derr != nil && err == nil {
			err = derr
		}
		fs.DurationVar(d.p, d.flag, def, d.help+" ($"+d.env+")")
	}
	if err != nil {
		return nil, err
	}
	if perr := fs.Parse(args); perr != nil {
		return nil, perr
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.ARIPassword = os.Getenv("ARIFLOW_ARI_PASSWORD")
	if c.ARIPasswordFile != "" {
		b, rerr := os.ReadFile(c.ARIPasswordFile)
		if rerr != nil {
			return nil, fmt.Errorf("ARI password file: %w", rerr)
		}
		c.ARIPassword = strings.TrimRight(string(b), "\r\n")
	}
	return c, errors.Join(c.validate(), c.loadSecurity(), c.loadObserve())
}

// redisOptions reads a Redis URL: redis://host:port/db, or with
// ?master_name=NAME&addr=host:port… a Sentinel set (the host and the addr
// parameters are the sentinels), through which go-redis finds the primary
// and follows failovers.
func redisOptions(raw string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Query().Has("master_name") {
		fo, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return nil, err
		}
		return &redis.UniversalOptions{MasterName: fo.MasterName, Addrs: fo.SentinelAddrs,
			SentinelUsername: fo.SentinelUsername, SentinelPassword: fo.SentinelPassword,
			Username: fo.Username, Password: fo.Password, DB: fo.DB, TLSConfig: fo.TLSConfig}, nil
	}
	o, err := redis.ParseURL(raw)
	if err != nil {
		return nil, err
	}
	return &redis.UniversalOptions{Addrs: []string{o.Addr}, Username: o.Username, Password: o.Password, DB: o.DB, TLSConfig: o.TLSConfig}, nil
}

// fallbackTarget reads "context[,extension[,priority]]".
func fallbackTarget(s string) (ctx, ext string, prio int, err error) {
	if s == "" {
		return "", "", 0, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > 3 || parts[0] == "" {
		return "", "", 0, fmt.Errorf("fallback %q: want context[,extension[,priority]]", s)
	}
	ctx, ext, prio = parts[0], "s", 1
	if len(parts) > 1 && parts[1] != "" {
		ext = parts[1]
	}
	if len(parts) > 2 {
		if prio, err = strconv.Atoi(parts[2]); err != nil || prio < 1 {
			return "", "", 0, fmt.Errorf("fallback %q: priority must be a positive number", s)
		}
	}
	for _, p := range []string{ctx, ext} {
		if strings.ContainsAny(p, ",/?&= \t\n") {
			return "", "", 0, fmt.Errorf("fallback %q: %q is not a plain dialplan name", s, p)
		}
	}
	return ctx, ext, prio, nil
}

var (
	userinfoRE         = regexp.MustCompile(`//([^:/@]*):[^@]*@`)
	userinfoPasswordRE = regexp.MustCompile(`//[^:/@]*:([^@]*)@`)
)

var dialTemplateRE = regexp.MustCompile(`^[A-Za-z0-9]+/[A-Za-z0-9_.@:/{}+-]*\{number\}[A-Za-z0-9_.@:/{}+-]*$`)

func (c *config) validate() error {
	var errs []error
	u, err := url.Parse(c.ARIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("ARI URL %q must be http(s)://host:port/ari", redactURL(c.ARIURL)))
	}
	if c.ARIUser == "" {
		errs = append(errs, errors.New("ARI user is empty"))
	}
	if c.ARIPassword == "" {
		errs = append(errs, errors.New("no ARI password: set ARIFLOW_ARI_PASSWORD or ARIFLOW_ARI_PASSWORD_FILE"))
	}
	if c.App == "" || strings.ContainsAny(c.App, ", /?&") {
		errs = append(errs, fmt.Errorf("app name %q is not a plain name", c.App))
	}
	if _, err := redisOptions(c.RedisURL); err != nil {
		errs = append(errs, fmt.Errorf("Redis URL %q: %v", redactURL(c.RedisURL), redactErr(err, c.RedisURL)))
	}
	if _, err := logrus.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("log level %q: use trace, debug, info, warn or error", c.LogLevel))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log format %q: use text or json", c.LogFormat))
	}
	if c.DialVia != "ari" && c.DialVia != "pbx" {
		errs = append(errs, fmt.Errorf("dial-via %q: want ari or pbx", c.DialVia))
	}
	if !dialTemplateRE.MatchString(c.DialTemplate) || strings.Count(c.DialTemplate, "{number}") != 1 {
		errs = append(errs, fmt.Errorf("dial template %q must be like PJSIP/{number}@trunk (one {number}, no spaces, commas or &)", c.DialTemplate))
	}
	if c.DTMFDelay < 0 || c.DTMFDelay > 10*time.Second {
		errs = append(errs, fmt.Errorf("DTMF delay %s must be between 0 and 10s", c.DTMFDelay))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("connect timeout %s must be positive", c.ConnectTimeout))
	}
	if _, _, _, err := fallbackTarget(c.Fallback); err != nil {
		errs = append(errs, err)
	}
	if c.LeaseTTL < 100*time.Millisecond || c.LeaseTTL > time.Minute {
		errs = append(errs, fmt.Errorf("lease TTL %s: use 100ms to 1m", c.LeaseTTL))
	}
	return errors.Join(errs...)
}

// redacted is the config for the start-up log line: no password.
func (c *config) redacted() logrus.Fields {
	return logrus.Fields{
		"ari_url": redactURL(c.ARIURL), "ari_user": c.ARIUser, "app": c.App, "redis": redactURL(c.RedisURL),
		"flows": c.FlowsPath, "http": c.HTTPAddr, "dial_template": c.DialTemplate, "dial_via": c.DialVia,
		"dial_policy": c.DialPolicyFile, "admin_token": c.AdminToken != "",
	}
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		// Unparsable, but it may still carry user:password@.
		return userinfoRE.ReplaceAllString(s, "//$1@")
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

// redactErr removes a URL's password from an error that may quote it.
func redactErr(err error, raw string) string {
	msg := err.Error()
	if u, perr := url.Parse(raw); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, mask)
		}
	}
	return msg
}
