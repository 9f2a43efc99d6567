package ari

import (
	"encoding/json"
	"fmt"

	v6 "github.com/CyCoreSystems/ari/v6"
)

// decodeEvent decodes the events ariflow acts on in one pass, into the
// library's types, reading only the fields it uses: the library's
// DecodeEvent reads every message twice and every channel in full, and
// was the largest part of ariflow's CPU time under load. Anything else
// goes to the library. ChannelDestroyed and ChannelHangupRequest come as
// this package's types, the library's with tech_cause beside them, and
// ChannelUserevent as UserEvent.
func decodeEvent(data []byte) (v6.Event, error) {
	var w wireEvent
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	ed := v6.EventData{Application: w.Application, Timestamp: w.Timestamp, Type: w.Type}
	switch w.Type {
	case "StasisStart":
		return &v6.StasisStart{EventData: ed, Args: w.Args, Channel: w.Channel.data()}, nil
	case "StasisEnd":
		return &v6.StasisEnd{EventData: ed, Channel: w.Channel.data()}, nil
	case "ChannelDestroyed":
		return &ChannelDestroyed{v6.ChannelDestroyed{EventData: ed, Channel: w.Channel.data(), Cause: w.Cause, CauseTxt: w.CauseTxt}, w.TechCause}, nil
	case "ChannelHangupRequest":
		return &ChannelHangupRequest{v6.ChannelHangupRequest{EventData: ed, Channel: w.Channel.data(), Cause: w.Cause, Soft: w.Soft}, w.TechCause}, nil
	case "ChannelStateChange":
		return &v6.ChannelStateChange{EventData: ed, Channel: w.Channel.data()}, nil
	case "ChannelDtmfReceived":
		return &v6.ChannelDtmfReceived{EventData: ed, Channel: w.Channel.data(), Digit: w.Digit, DurationMs: w.DurationMs}, nil
	case "Dial":
		return &v6.Dial{EventData: ed, Peer: w.Peer.data(), Caller: w.Caller.data(), Dialstatus: w.Dialstatus}, nil
	case "PlaybackFinished":
		if w.Playback != nil {
			return &v6.PlaybackFinished{EventData: ed, Playback: *w.Playback}, nil
		}
	case "ChannelUserevent":
		ue := &UserEvent{ChannelUserevent: v6.ChannelUserevent{EventData: ed, Channel: w.Channel.data(), Eventname: w.Eventname}}
		for k, v := range w.Userevent {
			var str string
			if json.Unmarshal(v, &str) == nil {
				if ue.Variables == nil {
					ue.Variables = map[string]string{}
				}
				ue.Variables[k] = str
			}
		}
		return ue, nil
	}
	return v6.DecodeEvent(data)
}

type wireEvent struct {
	Type        string           `json:"type"`
	Application string           `json:"application"`
	Timestamp   v6.DateTime      `json:"timestamp"`
	Args        []string         `json:"args"`
	Channel     wireChannel      `json:"channel"`
	Peer        wireChannel      `json:"peer"`
	Caller      wireChannel      `json:"caller"`
	Playback    *v6.PlaybackData `json:"playback"`
	Cause       int              `json:"cause"`
	CauseTxt    string           `json:"cause_txt"`
	TechCause   int              `json:"tech_cause"`
	Digit       string           `json:"digit"`
	DurationMs  int              `json:"duration_ms"`
	Dialstatus  string           `json:"dialstatus"`
	Soft        bool             `json:"soft"`
	Eventname   string           `json:"eventname"`
	// Userevent is a user event's variables (a ChannelUserevent's
	// userevent), decoded only for that type.
	Userevent map[string]json.RawMessage `json:"userevent"`
}

type wireChannel struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	State  string `json:"state"`
	Caller *struct {
		Name   string `json:"name"`
		Number string `json:"number"`
	} `json:"caller"`
}

func (c wireChannel) data() v6.ChannelData {
	d := v6.ChannelData{ID: c.ID, Name: c.Name, State: c.State}
	if c.Caller != nil {
		d.Caller = &v6.CallerID{Name: c.Caller.Name, Number: c.Caller.Number}
	}
	return d
}
