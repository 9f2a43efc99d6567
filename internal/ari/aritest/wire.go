package aritest

import (
	"maps"
	"slices"
	"time"
)

// ARI's date format, e.g. 2026-11-25T08:00:00.000+0000.
const timeFormat = "2006-01-02T15:04:05.000-0700"

const entityID = "02:42:ac:11:00:02"

func stamp(t time.Time) string { return t.UTC().Format(timeFormat) }

// ChannelState is what the fake knows about a channel.
type ChannelState struct {
	ID, Name, State string // State as ARI spells it: Down, Ring, Ringing, Up
	CallerNumber    string
	CallerName      string
	ConnectedNumber string
	ConnectedName   string
	App             string   // the app it is subscribed to ("" once it left Stasis)
	Args            []string // Stasis arguments
	InStasis        bool
	Originated      bool
	// Made is true for a channel made by POST /channels/create: in Stasis
	// from the start; Dialled once POST .../dial started it.
	Made, Dialled bool
	Endpoint      string // originate's endpoint
	Originator    string
	Timeout       int // originate's or dial's timeout in seconds (the fake never times out)
	Variables     map[string]string
	Bridge        string // the bridge it is in, or ""
	Ringing       bool   // a ringing indication was started (POST .../ring)
	Created       time.Time
}

type channel struct {
	ChannelState
	seq              int
	context, exten   string
	priority         int
	appName, appData string
}

type bridge struct {
	id, name, typ string
	members       []string
	created       time.Time
	seq           int
}

type playback struct {
	id, media, target, channel string
	seq                        int
}

type callerJSON struct {
	Name   string `json:"name"`
	Number string `json:"number"`
}

type dialplanJSON struct {
	Context  string `json:"context"`
	Exten    string `json:"exten"`
	Priority int    `json:"priority"`
	AppName  string `json:"app_name"`
	AppData  string `json:"app_data"`
}

type channelJSON struct {
	ID           string       `json:"id"`
	Name         string       `json:"name"`
	State        string       `json:"state"`
	ProtocolID   string       `json:"protocol_id"`
	Caller       callerJSON   `json:"caller"`
	Connected    callerJSON   `json:"connected"`
	Accountcode  string       `json:"accountcode"`
	Dialplan     dialplanJSON `json:"dialplan"`
	Creationtime string       `json:"creationtime"`
	Language     string       `json:"language"`
}

func (c *channel) json() channelJSON {
	return channelJSON{
		ID: c.ID, Name: c.Name, State: c.State,
		Caller:       callerJSON{c.CallerName, c.CallerNumber},
		Connected:    callerJSON{c.ConnectedName, c.ConnectedNumber},
		Dialplan:     dialplanJSON{c.context, c.exten, c.priority, c.appName, c.appData},
		Creationtime: stamp(c.Created),
		Language:     "en",
	}
}

func (c *channel) state() ChannelState {
	st := c.ChannelState
	st.Args = slices.Clone(c.Args)
	st.Variables = maps.Clone(c.Variables)
	return st
}

type bridgeJSON struct {
	ID           string   `json:"id"`
	Technology   string   `json:"technology"`
	BridgeType   string   `json:"bridge_type"`
	BridgeClass  string   `json:"bridge_class"`
	Creator      string   `json:"creator"`
	Name         string   `json:"name"`
	Channels     []string `json:"channels"`
	Creationtime string   `json:"creationtime"`
	VideoMode    string   `json:"video_mode"`
}

func (b *bridge) json() bridgeJSON {
	typ := b.typ
	if typ == "" {
		typ = "mixing"
	}
	return bridgeJSON{
		ID: b.id, Technology: "simple_bridge", BridgeType: typ, BridgeClass: "stasis",
		Creator: "Stasis", Name: b.name, Channels: append([]string{}, b.members...),
		Creationtime: stamp(b.created), VideoMode: "talker",
	}
}

type playbackJSON struct {
	ID        string `json:"id"`
	MediaURI  string `json:"media_uri"`
	TargetURI string `json:"target_uri"`
	Language  string `json:"language"`
	State     string `json:"state"`
}

func (p *playback) json(state string) playbackJSON {
	return playbackJSON{ID: p.id, MediaURI: p.media, TargetURI: p.target, Language: "en", State: state}
}

// causeText is Asterisk's ast_cause2str for the causes a PBX sends.
func causeText(cause int) string {
	switch cause {
	case 0:
		return "Unknown"
	case 1:
		return "Unallocated (unassigned) number"
	case 3:
		return "No route to destination"
	case 16:
		return "Normal Clearing"
	case 17:
		return "User busy"
	case 18:
		return "No user responding"
	case 19:
		return "User alerting, no answer"
	case 20:
		return "Subscriber absent"
	case 21:
		return "Call Rejected"
	case 22:
		return "Number changed"
	case 26:
		return "Answered elsewhere"
	case 27:
		return "Destination out of order"
	case 28:
		return "Invalid number format"
	case 29:
		return "Facility rejected"
	case 31:
		return "Normal, unspecified"
	case 34:
		return "Circuit/channel congestion"
	case 38:
		return "Network out of order"
	case 41:
		return "Temporary failure"
	case 42:
		return "Switching equipment congestion"
	case 44:
		return "Requested channel not available"
	case 58:
		return "Bearer capability not available"
	case 127:
		return "Interworking, unspecified"
	}
	return "Unknown"
}

// hangupReasons maps DELETE /channels/{id}?reason= to a cause, as
// resource_channels.c's convert_reason_to_hangup_code does.
var hangupReasons = map[string]int{
	"normal": 16, "busy": 17, "congestion": 34, "no_answer": 19, "timeout": 18,
	"rejected": 21, "unallocated": 1, "normal_unspecified": 31, "number_incomplete": 28,
	"codec_mismatch": 58, "interworking": 127, "failure": 38, "answered_elsewhere": 26,
}

// softhangupExplicit is AST_SOFTHANGUP_EXPLICIT: the "cause" Asterisk puts
// in the ChannelHangupRequest of an ARI hangup (ast_softhangup publishes
// its reason flag, not the Q.850 cause, with soft: true).
const softhangupExplicit = 32
