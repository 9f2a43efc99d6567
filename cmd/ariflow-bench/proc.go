package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/ariflow/ariflow/e2e"
)

// cpuSeconds is a process's user+system CPU time from /proc.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which may hold spaces: state is 3rd.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// peakRSSMB is VmHWM, the process's peak resident set.
func peakRSSMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// asteriskPid finds the PBX's Asterisk: the child of the unshare process
// whose PID the stack recorded.
func asteriskPid(s *e2e.Stack) (int, error) {
	b, err := os.ReadFile(s.Env["ARIFLOW_STACK_DIR"] + "/pbx.pid")
	if err != nil {
		return 0, fmt.Errorf("PBX pid: %w", err)
	}
	pid := strings.TrimSpace(string(b))
	kids, err := os.ReadFile("/proc/" + pid + "/task/" + pid + "/children")
	if err != nil {
		return 0, fmt.Errorf("PBX Asterisk process: %w", err)
	}
	f := strings.Fields(string(kids))
	if len(f) == 0 {
		return 0, fmt.Errorf("PBX Asterisk process not found under %s", pid)
	}
	return strconv.Atoi(f[0])
}

// redisCommands is Redis's count of commands processed.
func redisCommands(ctx context.Context, s *e2e.Stack) int64 {
	info, err := s.RDB.Info(ctx, "stats").Result()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// callGoroutines counts ariflow's goroutines that are not HTTP keep-alive
// connections: those come and go with the connection pool, while a
// goroutine left by a call would stay.
func callGoroutines(addr string) int {
	resp, err := adminGet("http://" + addr + "/debug/pprof/goroutine?debug=2")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	n := 0
	for _, g := range strings.Split(string(b), "\n\n") {
		if strings.HasPrefix(g, "goroutine ") && !strings.Contains(g, "net/http.(*persistConn)") {
			n++
		}
	}
	return n
}

// adminGet reads one of ariflow's admin endpoints (pprof), which need the
// bearer token the e2e harness starts ariflow with.
func adminGet(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e2e.AdminToken)
	return http.DefaultClient.Do(req)
}

// ariKinds is ariflow's ariflow_ari_answers_total summed by request kind.
func ariKinds(addr string) map[string]float64 {
	out := map[string]float64{}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "ariflow_ari_answers_total{")
		if !ok {
			continue
		}
		_, kind, ok := strings.Cut(line, `request="`)
		if !ok {
			continue
		}
		kind, _, _ = strings.Cut(kind, `"`)
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			out[kind] += v
		}
	}
	return out
}

// startPBXPerf records the PBX Asterisk's stacks with perf (linux-perf)
// while one side runs, to prefix-side.data; the returned func ends the
// recording. No prefix: nothing.
func startPBXPerf(prefix, side string, pid int) func() {
	if prefix == "" {
		return func() {}
	}
	out := prefix + "-" + side + ".data"
	cmd := exec.Command("perf", "record", "-q", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", out)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Println("pbxperf:", err)
		return func() {}
	}
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			fmt.Println("pbxperf:", err)
		}
		fmt.Println("pbxperf: wrote", out)
	}
}
