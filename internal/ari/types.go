package ari

import v6 "github.com/CyCoreSystems/ari/v6"

// The library's types, under the names the controller uses.
type (
	Event                = v6.Event
	EventData            = v6.EventData
	Key                  = v6.Key
	Keys                 = v6.Keys
	ChannelData          = v6.ChannelData
	CallerID             = v6.CallerID
	PlaybackData         = v6.PlaybackData
	DateTime             = v6.DateTime
	StasisStart          = v6.StasisStart
	StasisEnd            = v6.StasisEnd
	ChannelDestroyed     = v6.ChannelDestroyed
	ChannelHangupRequest = v6.ChannelHangupRequest
	ChannelStateChange   = v6.ChannelStateChange
	ChannelDtmfReceived  = v6.ChannelDtmfReceived
	Dial                 = v6.Dial
	PlaybackStarted      = v6.PlaybackStarted
	PlaybackFinished     = v6.PlaybackFinished
	ApplicationReplaced  = v6.ApplicationReplaced
	OriginateRequest     = v6.OriginateRequest
)
