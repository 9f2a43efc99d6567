package ari

import v6 "github.com/CyCoreSystems/ari/v6"

// The library's types, under the names the controller uses.
type (
	Event               = v6.Event
	EventData           = v6.EventData
	Key                 = v6.Key
	Keys                = v6.Keys
	ChannelData         = v6.ChannelData
	CallerID            = v6.CallerID
	PlaybackData        = v6.PlaybackData
	DateTime            = v6.DateTime
	StasisStart         = v6.StasisStart
	StasisEnd           = v6.StasisEnd
	ChannelStateChange  = v6.ChannelStateChange
	ChannelDtmfReceived = v6.ChannelDtmfReceived
	Dial                = v6.Dial
	PlaybackStarted     = v6.PlaybackStarted
	PlaybackFinished    = v6.PlaybackFinished
	ApplicationReplaced = v6.ApplicationReplaced
	OriginateRequest    = v6.OriginateRequest
)

// ChannelDestroyed is the library's event with tech_cause, which the
// library does not read: the channel technology's own cause, for PJSIP the
// final SIP response of a call that failed (486, 404, 503; 0 when there
// was none). Asterisk sends it since 20.11, 21.6 and 22.1.
type ChannelDestroyed struct {
	v6.ChannelDestroyed
	TechCause int
}

// ChannelHangupRequest is the library's event with tech_cause (see
// ChannelDestroyed).
type ChannelHangupRequest struct {
	v6.ChannelHangupRequest
	TechCause int
}

// NewChannelDestroyed is a ChannelDestroyed of a channel, for events a
// check finds missing.
func NewChannelDestroyed(id string, cause int, causeTxt string) *ChannelDestroyed {
	return &ChannelDestroyed{ChannelDestroyed: v6.ChannelDestroyed{EventData: v6.EventData{Type: "ChannelDestroyed"},
		Channel: v6.ChannelData{ID: id}, Cause: cause, CauseTxt: causeTxt}}
}

// UserEvent is a ChannelUserevent: a user event sent to the app through
// REST (POST /events/user/{name}), delivered on the app's websocket in
// order with its other events. ariflow's probes are user events (Probe).
// It is the library's ChannelUserevent (Eventname set, Userevent left
// nil) with the variables whose values are strings beside it (Asterisk
// adds eventname to them).
type UserEvent struct {
	v6.ChannelUserevent
	Variables map[string]string
}
