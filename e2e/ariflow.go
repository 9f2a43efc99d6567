package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Ariflow is an ariflow process the tests run against the stack's PBX,
// reached through a Proxy so that tests can cut its websocket.
type Ariflow struct {
	Stack    *Stack
	Proxy    *Proxy
	FlowsDir string
	HTTPAddr string
	LogPath  string
	// Env is added to the process's environment (after the defaults, so
	// it wins).
	Env []string
	// Standby: at start, wait for the process to be alive, not ready
	// (another process holds the lease).
	Standby bool
	// RecordRequests: the proxy keeps a record of the process's ARI
	// requests (Proxy.Requests), from its first.
	RecordRequests bool
	// Direct: ARI without the proxy (the benchmark: the dialplan it is
	// compared with has no hop of the kind either). Proxy is nil then.
	Direct bool
	cmd    *exec.Cmd
	exited chan error
	gone   chan struct{} // closed when the process has exited
}

// logsStarted holds the log paths a process was started with in this run.
var logsStarted sync.Map

// StartAriflow starts the stack's ariflow binary on flowsDir.
func StartAriflow(ctx context.Context, s *Stack, flowsDir, logName string) (*Ariflow, error) {
	return StartAriflowWith(ctx, &Ariflow{Stack: s, FlowsDir: flowsDir}, logName)
}

// StartAriflowWith starts a configured Ariflow (Stack and FlowsDir set;
// Env and Standby optional), behind a proxy of its own.
func StartAriflowWith(ctx context.Context, a *Ariflow, logName string) (*Ariflow, error) {
	s := a.Stack
	if !a.Direct {
		u, err := url.Parse(s.Env["ARIFLOW_STACK_PBX_ARI_URL"])
		if err != nil {
			return nil, err
		}
		if a.Proxy, err = NewProxy(u.Host); err != nil {
			return nil, err
		}
		if a.RecordRequests {
			a.Proxy.RecordRequests()
		}
	}
	logPath := filepath.Join(s.Env["ARIFLOW_STACK_LOGS"], logName)
	if _, again := logsStarted.LoadOrStore(logPath, true); !again {
		_ = os.Remove(logPath) // one run of the tests, one log
	} else if f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		// A process started again under the same name (a test that
		// stopped the suite's one) adds to the log: a failure earlier in
		// the run stays readable.
		fmt.Fprintf(f, "==== ariflow started again at %s ====\n", time.Now().UTC().Format(time.RFC3339Nano))
		f.Close()
	}
	if err := a.start(ctx, logName); err != nil {
		if a.Proxy != nil {
			a.Proxy.Close()
		}
		return nil, err
	}
	return a, nil
}

// AdminToken is the token the e2e processes require for /-/reload.
const AdminToken = "e2e-admin-token-0123456789abcdef"

func adminTokenFile(s *Stack) (string, error) {
	p := filepath.Join(s.Env["ARIFLOW_STACK_LOGS"], "..", "admin-token")
	return p, os.WriteFile(p, []byte(AdminToken+"\n"), 0o600)
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// ariURL is where the process reaches ARI: its proxy, or (Direct) the
// PBX.
func (a *Ariflow) ariURL() string {
	if a.Proxy == nil {
		return a.Stack.Env["ARIFLOW_STACK_PBX_ARI_URL"]
	}
	return "http://" + a.Proxy.Addr() + "/ari"
}

func (a *Ariflow) start(ctx context.Context, logName string) error {
	s := a.Stack
	addr, err := freePort()
	if err != nil {
		return err
	}
	a.HTTPAddr = addr
	a.LogPath = filepath.Join(s.Env["ARIFLOW_STACK_LOGS"], logName)
	logf, err := os.OpenFile(a.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	tokenFile, err := adminTokenFile(s)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.Env["ARIFLOW_STACK_ARIFLOW_BIN"], "run")
	cmd.Env = append(os.Environ(),
		"ARIFLOW_ADMIN_TOKEN_FILE="+tokenFile,
		// Text prompts: rendered where the PBX's chroot sees them
		// (the instance directory is its /instance).
		"ARIFLOW_TTS_DIR="+filepath.Join(s.Env["ARIFLOW_STACK_DIR"], "pbx", "tts"),
		"ARIFLOW_TTS_PLAY_DIR=/instance/tts",
		"ARIFLOW_FALLBACK=ariflow-fallback",
		"ARIFLOW_ARI_URL="+a.ariURL(),
		"ARIFLOW_ARI_USER="+s.Env["ARIFLOW_STACK_PBX_ARI_USER"],
		"ARIFLOW_ARI_PASSWORD="+s.Env["ARIFLOW_STACK_PBX_ARI_PASSWORD"],
		"ARIFLOW_REDIS_URL="+s.Env["ARIFLOW_STACK_REDIS_URL"],
		"ARIFLOW_FLOWS="+a.FlowsDir,
		"ARIFLOW_HTTP_ADDR="+addr,
		"ARIFLOW_DIAL_TEMPLATE=PJSIP/{number}@trunk",
	)
	if os.Getenv("ARIFLOW_LOG_LEVEL") == "" {
		cmd.Env = append(cmd.Env, "ARIFLOW_LOG_LEVEL=debug")
	}
	cmd.Env = append(cmd.Env, a.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test binary dies (a timeout panic skips TestMain's cleanup),
	// ariflow goes with it instead of running on.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start ariflow: %w", err)
	}
	a.cmd = cmd
	exited, gone := make(chan error, 1), make(chan struct{})
	a.exited, a.gone = exited, gone
	go func() {
		err := cmd.Wait()
		logf.Close()
		close(gone)
		exited <- err
	}()
	deadline := time.Now().Add(15 * time.Second)
	up := Ready
	if a.Standby {
		up = Live
	}
	for !up(addr) {
		select {
		case err := <-a.exited:
			return fmt.Errorf("ariflow exited at start (%v); log: %s", err, a.LogPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ariflow not ready in 15 s; log: %s", a.LogPath)
		}
	}
	return nil
}

// Restart stops the process with SIGTERM (calls stay for the next one)
// and starts a new one on the same flows.
func (a *Ariflow) Restart(ctx context.Context) error {
	if err := a.Stop(); err != nil {
		return err
	}
	return a.start(ctx, filepath.Base(a.LogPath))
}

// Stop sends SIGTERM and waits for the process to exit.
func (a *Ariflow) Stop() error {
	if a.cmd == nil {
		return nil
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.exited
		return fmt.Errorf("ariflow did not stop on SIGTERM within 10 s")
	}
	a.cmd = nil
	return nil
}

// WaitReady waits for /readyz to say ready.
func (a *Ariflow) WaitReady(ctx context.Context) error {
	for !Ready(a.HTTPAddr) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("ariflow not ready: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// Metric reads one counter or gauge from /metrics (0 when absent).
func (a *Ariflow) Metric(name string) float64 {
	resp, err := http.Get("http://" + a.HTTPAddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, name)), 64)
			return v
		}
	}
	return 0
}

// Reload asks ariflow to reload its flows, with the admin token; it
// returns the HTTP status.
func (a *Ariflow) Reload() (int, string, error) { return a.ReloadWith("Bearer " + AdminToken) }

// ReloadWith sends the reload request with the given Authorization
// header ("" for none).
func (a *Ariflow) ReloadWith(auth string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+a.HTTPAddr+"/-/reload", nil)
	if err != nil {
		return 0, "", err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// Ready reports whether /readyz says ready now.
func (a *Ariflow) Ready() bool { return Ready(a.HTTPAddr) }

// BuildAriflow builds ariflow from the working tree into dir: tests and
// benchmarks must run the code under test, not a stale binary.
func BuildAriflow(repo, dir string) (string, error) {
	bin := filepath.Join(dir, "ariflow-under-test")
	args := []string{"build", "-o", bin}
	if os.Getenv("ARIFLOW_E2E_RACE") != "" {
		args = append(args, "-race") // the race detector on real calls
	}
	build := exec.Command("go", append(args, "./cmd/ariflow")...)
	build.Dir = repo
	out, err := build.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building ariflow: %v\n%s", err, out)
	}
	return bin, nil
}

// Signal sends sig to the process (SIGKILL, SIGSTOP, SIGCONT for the
// fault tests).
func (a *Ariflow) Signal(sig syscall.Signal) error {
	if a.cmd == nil {
		return fmt.Errorf("ariflow not running")
	}
	return a.cmd.Process.Signal(sig)
}

// Kill ends the process with SIGKILL and waits for it: no handover.
func (a *Ariflow) Kill() {
	if a.cmd == nil {
		return
	}
	_ = a.cmd.Process.Kill()
	<-a.exited
	a.cmd = nil
}

// Close stops the process (SIGTERM) and its proxy.
func (a *Ariflow) Close() {
	_ = a.Stop()
	if a.Proxy != nil {
		a.Proxy.Close()
	}
}

// Running reports whether the process started last is still running
// (a stopped one, SIGSTOP, is running).
func (a *Ariflow) Running() bool {
	if a.cmd == nil {
		return false
	}
	select {
	case <-a.gone:
		return false
	default:
		return true
	}
}

// Pid is the running process's ID.
func (a *Ariflow) Pid() int {
	if a.cmd == nil || a.cmd.Process == nil {
		return 0
	}
	return a.cmd.Process.Pid
}
