package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/CyCoreSystems/ari/v6"
	"golang.org/x/net/websocket"
)

// hub reads an ARI app's websocket and fans events out to subscribers.
// Each subscriber's queue grows as needed: tests must not lose events.
type hub struct {
	mu   sync.Mutex
	subs map[*sub]struct{}
	ws   *websocket.Conn
}

type sub struct {
	match func(ari.Event) bool
	mu    sync.Mutex
	queue []ari.Event
	ready chan struct{} // signalled when queue grows
}

func connectHub(ctx context.Context, base, app, user, password string, all bool) (*hub, error) {
	q := url.Values{"app": {app}}
	if all {
		q.Set("subscribeAll", "true")
	}
	u := strings.Replace(strings.TrimSuffix(base, "/"), "http://", "ws://", 1) + "/events?" + q.Encode()
	cfg, err := websocket.NewConfig(u, "http://localhost/")
	if err != nil {
		return nil, err
	}
	cfg.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
	ws, err := cfg.DialContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("carrier websocket: %w", err)
	}
	h := &hub{subs: map[*sub]struct{}{}, ws: ws}
	go h.read()
	return h, nil
}

func (h *hub) read() {
	for {
		var data []byte
		if err := websocket.Message.Receive(h.ws, &data); err != nil {
			return
		}
		ev, err := ari.DecodeEvent(data)
		if err != nil {
			continue
		}
		h.mu.Lock()
		for s := range h.subs {
			if s.match(ev) {
				s.push(ev)
			}
		}
		h.mu.Unlock()
	}
}

func (h *hub) close() { h.ws.Close() }

func (h *hub) subscribe(match func(ari.Event) bool) *sub {
	s := &sub{match: match, ready: make(chan struct{}, 1)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *hub) unsubscribe(s *sub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

func (s *sub) push(ev ari.Event) {
	s.mu.Lock()
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// next returns the next event, waiting until ctx ends.
func (s *sub) next(ctx context.Context) (ari.Event, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			ev := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return ev, nil
		}
		s.mu.Unlock()
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// channelIDs are the channel IDs an event is about.
func channelIDs(ev ari.Event) []string {
	var ids []string
	for _, k := range ev.Keys() {
		if k.Kind == ari.ChannelKey {
			ids = append(ids, k.ID)
		}
	}
	return ids
}

func about(id string) func(ari.Event) bool {
	return func(ev ari.Event) bool {
		for _, c := range channelIDs(ev) {
			if c == id {
				return true
			}
		}
		return false
	}
}
