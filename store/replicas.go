package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrNoReplicas: Redis refused a write because fewer replicas than its
// min-replicas-to-write setting are connected and caught up (NOREPLICAS).
// The setting is what keeps a primary cut off from its replicas from
// taking lease renewals that a failover would lose (docs/security.md,
// "Redis Sentinel and the lease"); while it refuses, no process can hold
// the lease, so none acts on any call.
var ErrNoReplicas = errors.New("Redis refused the write: fewer replicas than min-replicas-to-write acknowledge the primary (NOREPLICAS); no process acts until a replica is back")

// clearRedisErrors is a go-redis hook that turns a NOREPLICAS reply (also
// from inside a script) into ErrNoReplicas, keeping Redis's own text, for
// every command and pipeline of the client it is added to.
type clearRedisErrors struct{}

func (clearRedisErrors) DialHook(next redis.DialHook) redis.DialHook { return next }

func (clearRedisErrors) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if !isNoReplicas(err) {
			return err
		}
		refused := fmt.Errorf("%w: %v", ErrNoReplicas, err)
		cmd.SetErr(refused)
		return refused
	}
}

func (clearRedisErrors) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if isNoReplicas(cmd.Err()) {
				cmd.SetErr(fmt.Errorf("%w: %v", ErrNoReplicas, cmd.Err()))
			}
		}
		if isNoReplicas(err) {
			err = fmt.Errorf("%w: %v", ErrNoReplicas, err)
		}
		return err
	}
}

// isNoReplicas tells a NOREPLICAS reply not yet made ErrNoReplicas.
func isNoReplicas(err error) bool {
	return err != nil && !errors.Is(err, ErrNoReplicas) && strings.Contains(err.Error(), "NOREPLICAS")
}
