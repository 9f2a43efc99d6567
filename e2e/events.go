package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"golang.org/x/net/websocket"
)

// hub reads an ARI app's websocket and fans events out to subscribers.
// Each subscriber's queue grows as needed: tests must not lose events.
type hub struct {
	mu   sync.Mutex
	subs map[*sub]struct{}
	// byChannel holds the subscribers to one channel's events: found by
	// the event's channel IDs, not by asking every subscriber, and dropped
	// at the channel's end, so that a long run's calls cost nothing after
	// they ended.
	byChannel map[string]map[*sub]struct{}
	ws        *websocket.Conn
	dial      func() (*websocket.Conn, error)
	closed    bool
	// lagMax is, per second, the longest an event took from Asterisk's
	// timestamp to this process decoding it: how far the harness lags.
	lagMax map[int64]time.Duration
}

type sub struct {
	match   func(ari.Event) bool
	channel string // set for a subscriber to one channel's events
	mu      sync.Mutex
	queue   []ari.Event
	ready   chan struct{} // signalled when queue grows
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
	// A restarted Asterisk (the PBX-restart fault test) drops the
	// connection: the hub dials again until it is closed.
	h := &hub{subs: map[*sub]struct{}{}, byChannel: map[string]map[*sub]struct{}{}, ws: ws, dial: func() (*websocket.Conn, error) {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return cfg.DialContext(dctx)
	}}
	go h.read()
	return h, nil
}

func (h *hub) read() {
	for {
		var data []byte
		h.mu.Lock()
		ws := h.ws
		h.mu.Unlock()
		if err := websocket.Message.Receive(ws, &data); err != nil {
			if !h.redial() {
				return
			}
			continue
		}
		ev, err := ari.DecodeEvent(data)
		if err != nil {
			continue
		}
		now := time.Now()
		h.mu.Lock()
		if at := EventTime(ev); !at.IsZero() {
			if h.lagMax == nil {
				h.lagMax = map[int64]time.Duration{}
			}
			sec := now.Unix()
			h.lagMax[sec] = max(h.lagMax[sec], now.Sub(at))
		}
		for s := range h.subs {
			if s.match(ev) {
				s.push(ev)
			}
		}
		_, destroyed := ev.(*ari.ChannelDestroyed)
		for _, id := range channelIDs(ev) {
			for s := range h.byChannel[id] {
				s.push(ev)
			}
			if destroyed {
				delete(h.byChannel, id)
			}
		}
		h.mu.Unlock()
	}
}

// lags returns, per second, the longest delivery lag seen, and forgets
// them.
func (h *hub) lags() map[int64]time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.lagMax
	h.lagMax = nil
	return l
}

// redial connects again after the connection failed; false once closed.
func (h *hub) redial() bool {
	for {
		h.mu.Lock()
		closed := h.closed
		h.mu.Unlock()
		if closed {
			return false
		}
		if ws, err := h.dial(); err == nil {
			h.mu.Lock()
			h.ws = ws
			h.mu.Unlock()
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	ws := h.ws
	h.mu.Unlock()
	ws.Close()
}

func (h *hub) subscribe(match func(ari.Event) bool) *sub {
	s := &sub{match: match, ready: make(chan struct{}, 1)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// subscribeChannel subscribes to the events about one channel, until
// its ChannelDestroyed (included).
func (h *hub) subscribeChannel(id string) *sub {
	s := &sub{channel: id, ready: make(chan struct{}, 1)}
	h.mu.Lock()
	if h.byChannel[id] == nil {
		h.byChannel[id] = map[*sub]struct{}{}
	}
	h.byChannel[id][s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *hub) unsubscribe(s *sub) {
	h.mu.Lock()
	delete(h.subs, s)
	if s.channel != "" {
		delete(h.byChannel[s.channel], s)
		if len(h.byChannel[s.channel]) == 0 {
			delete(h.byChannel, s.channel)
		}
	}
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
