// Package e2e drives ariflow from the outside: a carrier Asterisk places
// calls into the PBX that ariflow controls and plays the far ends (shipper,
// agents), over a real PJSIP trunk. The stack is started by e2e/stack.sh.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/CyCoreSystems/ari/v6/client/native"
	"github.com/redis/go-redis/v9"
)

// Stack is where the parts of a running test stack listen.
type Stack struct {
	Env map[string]string
	PBX ari.Client // REST only
	RDB *redis.Client
}

// DefaultEnvFile is where e2e/stack.sh up writes the stack's addresses.
const DefaultEnvFile = "/tmp/ariflow-stack/stack.env"

// LoadStack reads the stack's env file (ARIFLOW_STACK_ENV, or the default).
func LoadStack() (*Stack, error) {
	path := os.Getenv("ARIFLOW_STACK_ENV")
	if path == "" {
		path = DefaultEnvFile
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("no test stack (%w); start one with: e2e/stack.sh up --no-ariflow", err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			env[k] = v
		}
	}
	s := &Stack{Env: env}
	s.PBX = native.New(&native.Options{
		Application: "e2e-observer", URL: env["ARIFLOW_STACK_PBX_ARI_URL"],
		Username: env["ARIFLOW_STACK_PBX_ARI_USER"], Password: env["ARIFLOW_STACK_PBX_ARI_PASSWORD"],
	})
	opts, err := redis.ParseURL(env["ARIFLOW_STACK_REDIS_URL"])
	if err != nil {
		return nil, fmt.Errorf("stack Redis URL: %w", err)
	}
	s.RDB = redis.NewClient(opts)
	return s, nil
}

// Leftovers lists what the PBX and Redis still hold: channels, bridges and
// call records. A clean stack returns three empty lists.
func (s *Stack) Leftovers(ctx context.Context) (chans, bridges, keys []string, err error) {
	ck, err := s.PBX.Channel().List(nil)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list channels: %w", err)
	}
	for _, k := range ck {
		chans = append(chans, k.ID)
	}
	bk, err := s.PBX.Bridge().List(nil)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list bridges: %w", err)
	}
	for _, k := range bk {
		bridges = append(bridges, k.ID)
	}
	keys, err = s.RDB.Keys(ctx, "ariflow:*:call:*").Result()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("redis keys: %w", err)
	}
	return chans, bridges, keys, nil
}

// WaitClean waits until nothing is left, or returns what is left at the
// deadline. Teardown crosses processes (Asterisk, ariflow, Redis), so there
// is no single event to wait for: poll.
func (s *Stack) WaitClean(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ch, br, keys, err := s.Leftovers(ctx)
		if err == nil && len(ch)+len(br)+len(keys) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return fmt.Errorf("left behind: channels %v, bridges %v, redis %v", ch, br, keys)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ForceClean hangs up every PBX channel, destroys every bridge and, once
// ariflow has had the chance to end its calls, deletes the call records
// still left. A failed test calls it so that the next test starts clean.
func (s *Stack) ForceClean(ctx context.Context) error {
	chans, bridges, _, err := s.Leftovers(ctx)
	if err != nil {
		return err
	}
	for _, id := range chans {
		_ = s.PBX.Channel().Hangup(ari.NewKey(ari.ChannelKey, id), "normal")
	}
	for _, id := range bridges {
		_ = s.PBX.Bridge().Delete(ari.NewKey(ari.BridgeKey, id))
	}
	if s.WaitClean(ctx, 5*time.Second) == nil {
		return nil
	}
	_, _, keys, err := s.Leftovers(ctx)
	if err != nil {
		return err
	}
	if len(keys) > 0 {
		if err := s.RDB.Del(ctx, keys...).Err(); err != nil {
			return fmt.Errorf("delete call records: %w", err)
		}
	}
	return s.WaitClean(ctx, 5*time.Second)
}

// Ready polls an ariflow's /readyz.
func Ready(addr string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Live reports whether an ariflow process answers /livez (active or
// standby).
func Live(addr string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/livez")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
