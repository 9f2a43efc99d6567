package ari

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The REST requests on a call's path. Paths and parameters are ARI's; each
// is bounded by the Client's timeout and costs no goroutine of its own.
// Those marked once are never sent twice by the transport (see resend): an
// error from one of them may hide a request Asterisk carried out.

func chanPath(id string) string   { return "/channels/" + url.PathEscape(id) }
func bridgePath(id string) string { return "/bridges/" + url.PathEscape(id) }

// Originate starts an outbound channel. With App set, the channel enters
// Stasis when answered; its Dial and ChannelDestroyed events reach the app
// before that because the app is subscribed to it. Sent once: a second
// originate of the same channel ID is refused (409).
func (c *Client) Originate(ctx context.Context, req OriginateRequest) error {
	return c.do(ctx, http.MethodPost, "/channels", req, nil, once)
}

func (c *Client) Answer(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, chanPath(id)+"/answer", nil, nil, again)
}

// Ring sends ringing to a channel; StopRing ends it.
func (c *Client) Ring(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, chanPath(id)+"/ring", nil, nil, again)
}

func (c *Client) StopRing(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, chanPath(id)+"/ring", nil, nil, again)
}

// Play starts media on a channel under the given playback ID. Sent once:
// the playback ID is taken by the first.
func (c *Client) Play(ctx context.Context, channel, playbackID, media string) error {
	q := url.Values{"media": {media}}
	return c.do(ctx, http.MethodPost, chanPath(channel)+"/play/"+url.PathEscape(playbackID)+"?"+q.Encode(), nil, nil, once)
}

func (c *Client) StopPlayback(ctx context.Context, playbackID string) error {
	return c.do(ctx, http.MethodDelete, "/playbacks/"+url.PathEscape(playbackID), nil, nil, again)
}

// PlaybackExists tells whether a playback is still running.
func (c *Client) PlaybackExists(ctx context.Context, playbackID string) (bool, error) {
	err := c.do(ctx, http.MethodGet, "/playbacks/"+url.PathEscape(playbackID), nil, nil, again)
	if IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// SendDTMF plays digits on a channel. Send one digit per request: a string
// is played out by the channel's own thread, which answers a hangup only
// once it is done. Sent once: a digit sent again is played again.
func (c *Client) SendDTMF(ctx context.Context, id, digits string, between, duration time.Duration) error {
	q := url.Values{"dtmf": {digits},
		"between":  {strconv.Itoa(int(between / time.Millisecond))},
		"duration": {strconv.Itoa(int(duration / time.Millisecond))}}
	return c.do(ctx, http.MethodPost, chanPath(id)+"/dtmf?"+q.Encode(), nil, nil, once)
}

// Continue sends a channel back to the dialplan: to context/extension/
// priority, or (context "") to the priority after Stasis(). Sent once: a
// second one finds the channel gone from Stasis.
func (c *Client) Continue(ctx context.Context, id, dpContext, ext string, prio int) error {
	q := url.Values{}
	if dpContext != "" {
		q.Set("context", dpContext)
		q.Set("extension", ext)
		q.Set("priority", strconv.Itoa(prio))
	}
	return c.do(ctx, http.MethodPost, chanPath(id)+"/continue?"+q.Encode(), nil, nil, once)
}

// ChannelExists tells whether a channel exists.
func (c *Client) ChannelExists(ctx context.Context, id string) (bool, error) {
	err := c.do(ctx, http.MethodGet, chanPath(id), nil, nil, again)
	if IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Channel is what a channel list says of each channel.
type Channel struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	State    string   `json:"state"`
	Caller   CallerID `json:"caller"`
	Dialplan struct {
		Context string `json:"context"`
		Exten   string `json:"exten"`
		AppName string `json:"app_name"`
		AppData string `json:"app_data"`
	} `json:"dialplan"`
}

// InApp tells whether the channel is in Stasis for app (by its dialplan
// application; an originated leg in Stasis has none).
func (ch Channel) InApp(app string) bool {
	if !strings.EqualFold(ch.Dialplan.AppName, "Stasis") {
		return false
	}
	name, _, _ := strings.Cut(ch.Dialplan.AppData, ",")
	return strings.TrimSpace(name) == app
}

// AppArgs are the arguments the channel's Stasis() was given, after the
// app name.
func (ch Channel) AppArgs() []string {
	parts := strings.Split(ch.Dialplan.AppData, ",")
	if len(parts) < 2 {
		return nil
	}
	return parts[1:]
}

// Channels lists every channel Asterisk has.
func (c *Client) Channels(ctx context.Context) ([]Channel, error) {
	var out []Channel
	err := c.do(ctx, http.MethodGet, "/channels", nil, &out, again)
	return out, err
}

// Hangup hangs a channel up; "already gone" (404) is done.
func (c *Client) Hangup(ctx context.Context, id, reason string) error {
	err := c.do(ctx, http.MethodDelete, chanPath(id)+"?"+url.Values{"reason": {reason}}.Encode(), nil, nil, again)
	if err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}

// CreateBridge creates a mixing bridge with the given ID. Sent once:
// Asterisk 22 refuses a second create of the same ID (409 "Bridge with id
// ... already exists"), which would hide the first one's success.
func (c *Client) CreateBridge(ctx context.Context, id, name string) error {
	q := url.Values{"type": {"mixing"}, "name": {name}}
	return c.do(ctx, http.MethodPost, bridgePath(id)+"?"+q.Encode(), nil, nil, once)
}

// CreateBridgeDTMFEvents creates a mixing bridge that reports its
// channels' DTMF (ChannelDtmfReceived): a plain mixing bridge passes key
// presses on without an event.
func (c *Client) CreateBridgeDTMFEvents(ctx context.Context, id, name string) error {
	q := url.Values{"type": {"mixing,dtmf_events"}, "name": {name}}
	return c.do(ctx, http.MethodPost, bridgePath(id)+"?"+q.Encode(), nil, nil, once)
}

// BridgeJoin are the options of addChannel (POST
// /bridges/{id}/addChannel), for every channel of the request.
type BridgeJoin struct {
	// AbsorbDTMF: the channel's key presses still reach the app as
	// ChannelDtmfReceived but are not passed on to the other channels.
	AbsorbDTMF bool
	// InhibitConnectedLine (inhibitConnectedLineUpdates, Asterisk 18+):
	// the join sends no connected-line update. When a join makes a
	// two-party bridge, Asterisk shows each side the other's identity
	// (an UPDATE or re-INVITE with the peer's name and number, on any
	// trunk that sends connected line); only the join of a channel
	// without this flag does so. The channels join on their own threads,
	// in no order the requests fix, so every channel of a bridge must
	// carry it for neither side to be shown the other.
	InhibitConnectedLine bool
}

// AddToBridgeWith adds channels to a bridge in one request, with o. Sent
// once: a second addChannel for a channel already in the bridge takes it
// out and in again with the second request's settings, and two at once
// can leave it joined with none (absorbDTMF lost: the far end hears the
// caller's keys). Callers check the bridge's channels after an error.
func (c *Client) AddToBridgeWith(ctx context.Context, bridge string, o BridgeJoin, channels ...string) error {
	// The query parameter takes a comma-separated list.
	q := url.Values{"channel": {strings.Join(channels, ",")}}
	if o.AbsorbDTMF {
		q.Set("absorbDTMF", "true")
	}
	if o.InhibitConnectedLine {
		q.Set("inhibitConnectedLineUpdates", "true")
	}
	return c.do(ctx, http.MethodPost, bridgePath(bridge)+"/addChannel?"+q.Encode(), nil, nil, once)
}

// AddToBridge is AddToBridgeWith without options.
func (c *Client) AddToBridge(ctx context.Context, bridge string, channels ...string) error {
	return c.AddToBridgeWith(ctx, bridge, BridgeJoin{}, channels...)
}

// AddToBridgeAbsorbingDTMF is AddToBridgeWith absorbing DTMF.
func (c *Client) AddToBridgeAbsorbingDTMF(ctx context.Context, bridge string, channels ...string) error {
	return c.AddToBridgeWith(ctx, bridge, BridgeJoin{AbsorbDTMF: true}, channels...)
}

// RemoveFromBridge takes a channel out of a bridge. Asterisk answers once
// the channel has left it and is back under the app's control, where a
// bridge's destroy answers before its channels have left: a request for
// the channel sent after the destroy's answer (a playback) can reach it
// while it is still leaving, and be lost with the bridge.
func (c *Client) RemoveFromBridge(ctx context.Context, bridge, channel string) error {
	q := url.Values{"channel": {channel}}
	return c.do(ctx, http.MethodPost, bridgePath(bridge)+"/removeChannel?"+q.Encode(), nil, nil, again)
}

// DestroyBridge destroys a bridge; "already gone" (404) is done. Asterisk
// never destroys a Stasis bridge by itself.
func (c *Client) DestroyBridge(ctx context.Context, id string) error {
	err := c.do(ctx, http.MethodDelete, bridgePath(id), nil, nil, again)
	if err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}

// BridgeChannels lists the channels in a bridge; a 404 error when the
// bridge is gone.
func (c *Client) BridgeChannels(ctx context.Context, id string) ([]string, error) {
	var b Bridge
	if err := c.do(ctx, http.MethodGet, bridgePath(id), nil, &b, again); err != nil {
		return nil, err
	}
	return b.Channels, nil
}

// Bridge is what a bridge list says of each bridge.
type Bridge struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Channels []string `json:"channels"`
}

// Bridges lists every bridge Asterisk has.
func (c *Client) Bridges(ctx context.Context) ([]Bridge, error) {
	var out []Bridge
	err := c.do(ctx, http.MethodGet, "/bridges", nil, &out, again)
	return out, err
}

// EventTypes are the only events ariflow acts on. Asked for alone, they
// spare Asterisk and us the rest (variable sets, dialplan steps, bridge and
// caller ID updates), a large part of the event traffic.
// ChannelUserevent carries the event path's probes (Probe).
var EventTypes = []string{
	"StasisStart", "StasisEnd", "ChannelDestroyed", "ChannelHangupRequest",
	"ChannelStateChange", "Dial", "ChannelDtmfReceived", "PlaybackFinished",
	"ApplicationReplaced", "ChannelUserevent",
}

// SetEventFilter asks Asterisk to send the app only these event types.
func (c *Client) SetEventFilter(ctx context.Context, types []string) error {
	type t struct {
		Type string `json:"type"`
	}
	allowed := make([]t, len(types))
	for i, e := range types {
		allowed[i] = t{e}
	}
	return c.do(ctx, http.MethodPut, "/applications/"+url.PathEscape(c.opts.App)+"/eventFilter", map[string]any{"allowed": allowed}, nil, again)
}

// ChannelState is a channel's state ("Up", "Ringing", …); a 404 error
// when it is gone.
func (c *Client) ChannelState(ctx context.Context, id string) (string, error) {
	ch, err := c.Channel(ctx, id)
	return ch.State, err
}

// Channel is what Asterisk says of a channel now; a 404 error when it is
// gone.
func (c *Client) Channel(ctx context.Context, id string) (Channel, error) {
	var ch Channel
	err := c.do(ctx, http.MethodGet, chanPath(id), nil, &ch, again)
	return ch, err
}

// CreateRequest creates a channel without dialling it
// (POST /channels/create): it enters app at once, and Dial then calls it.
type CreateRequest struct {
	Endpoint   string            `json:"endpoint"`
	App        string            `json:"app"`
	AppArgs    string            `json:"appArgs,omitempty"`
	ChannelID  string            `json:"channelId,omitempty"`
	Originator string            `json:"originator,omitempty"`
	Variables  map[string]string `json:"variables,omitempty"`
}

// Create creates a channel in Stasis, not yet dialled: its StasisStart
// comes now, and its answer later as a ChannelStateChange to Up. Sent
// once: a second create of the same ID is refused (409).
func (c *Client) Create(ctx context.Context, req CreateRequest) error {
	return c.do(ctx, http.MethodPost, "/channels/create", req, nil, once)
}

// Dial dials a created channel, giving up after timeout (whole seconds).
// It returns at once; Dial and ChannelStateChange events follow. Sent
// once: a second dial is refused (409, not in state Down) or, when both
// arrive before the first has started, accepted twice, which crashed
// Asterisk 22 in our tests (docs/ari-event-path.md).
func (c *Client) Dial(ctx context.Context, id string, timeout time.Duration) error {
	q := url.Values{"timeout": {strconv.Itoa(int(timeout / time.Second))}}
	return c.do(ctx, http.MethodPost, chanPath(id)+"/dial?"+q.Encode(), nil, nil, once)
}

// StartMOH plays music on hold of class ("" the default) to a channel;
// StopMOH ends it.
func (c *Client) StartMOH(ctx context.Context, id, class string) error {
	q := url.Values{}
	if class != "" {
		q.Set("mohClass", class)
	}
	return c.do(ctx, http.MethodPost, chanPath(id)+"/moh?"+q.Encode(), nil, nil, again)
}

func (c *Client) StopMOH(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, chanPath(id)+"/moh", nil, nil, again)
}

// Application is what Asterisk says of a Stasis application: the event
// sources it is subscribed to (GET /applications/{app}).
//
// It does not say whether the application is active: an application
// Asterisk left inactive under an open websocket (docs/ari-event-path.md)
// is listed the same. Only an event that arrives proves the event path
// (Probe).
type Application struct {
	Name        string   `json:"name"`
	ChannelIDs  []string `json:"channel_ids"`
	BridgeIDs   []string `json:"bridge_ids"`
	EndpointIDs []string `json:"endpoint_ids"`
	DeviceNames []string `json:"device_names"`
	// EventsAllowed and EventsDisallowed are the event filter's types.
	EventsAllowed    []string `json:"-"`
	EventsDisallowed []string `json:"-"`
}

// Application reads the Client's application. An application Asterisk
// does not know (never registered, or cleaned up after its last
// websocket and its last channel went) is a 404 (IsNotFound).
func (c *Client) Application(ctx context.Context) (Application, error) {
	var raw struct {
		Application
		Allowed    []struct{ Type string } `json:"events_allowed"`
		Disallowed []struct{ Type string } `json:"events_disallowed"`
	}
	if err := c.do(ctx, http.MethodGet, "/applications/"+url.PathEscape(c.opts.App), nil, &raw, again); err != nil {
		return Application{}, err
	}
	app := raw.Application
	for _, a := range raw.Allowed {
		app.EventsAllowed = append(app.EventsAllowed, a.Type)
	}
	for _, d := range raw.Disallowed {
		app.EventsDisallowed = append(app.EventsDisallowed, d.Type)
	}
	return app, nil
}

// Ping asks Asterisk for a pong (GET /asterisk/ping): ARI answers and
// takes the credentials, at the cost of one small request. It returns the
// answering Asterisk's entity ID.
//
// Ping acts on nothing, so that a process without the lease (a standby
// about to campaign) may make it: Options.Allow is not asked and
// Options.Sent not told.
func (c *Client) Ping(ctx context.Context) (entityID string, err error) {
	var pong struct {
		Ping     string `json:"ping"`
		EntityID string `json:"asterisk_id"`
	}
	if err := c.send(ctx, http.MethodGet, "/asterisk/ping", nil, &pong, again); err != nil {
		return "", err
	}
	if pong.Ping != "pong" {
		return "", fmt.Errorf("GET /asterisk/ping: answer %q, want pong", pong.Ping)
	}
	return pong.EntityID, nil
}
