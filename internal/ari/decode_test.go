package ari

import (
	"reflect"
	"testing"

	v6 "github.com/CyCoreSystems/ari/v6"
)

// ARI messages as Asterisk 22 sends them (trimmed).
var sampleEvents = map[string]string{
	"StasisStart":          `{"type":"StasisStart","timestamp":"2026-11-24T20:47:42.006+0000","args":["+4930555000"],"channel":{"id":"pbx-1.0","name":"PJSIP/trunk-00000000","state":"Ring","protocol_id":"abc","caller":{"name":"Caller","number":"+4917612345678"},"connected":{"name":"","number":""},"accountcode":"","dialplan":{"context":"from-trunk","exten":"+4930555000","priority":2,"app_name":"Stasis","app_data":"ariflow,+4930555000"},"creationtime":"2026-11-24T20:47:42.001+0000","language":"en"},"asterisk_id":"02:00:00:a1:f1:01","application":"ariflow"}`,
	"StasisEnd":            `{"type":"StasisEnd","timestamp":"2026-11-24T20:47:50.473+0000","channel":{"id":"pbx-1.0","name":"PJSIP/trunk-00000000","state":"Up"},"application":"ariflow"}`,
	"ChannelDestroyed":     `{"type":"ChannelDestroyed","timestamp":"2026-11-24T20:47:50.473+0000","cause":17,"cause_txt":"User busy","tech_cause":486,"channel":{"id":"leg-1","name":"PJSIP/trunk-00000001","state":"Down"},"application":"ariflow"}`,
	"ChannelHangupRequest": `{"type":"ChannelHangupRequest","timestamp":"2026-11-24T20:47:48.736+0000","soft":true,"cause":16,"tech_cause":200,"channel":{"id":"leg-1","name":"PJSIP/trunk-00000001","state":"Up"},"application":"ariflow"}`,
	"ChannelStateChange":   `{"type":"ChannelStateChange","timestamp":"2026-11-24T20:47:45.928+0000","channel":{"id":"leg-1","name":"PJSIP/trunk-00000001","state":"Up"},"application":"ariflow"}`,
	"ChannelDtmfReceived":  `{"type":"ChannelDtmfReceived","timestamp":"2026-11-24T20:47:45.117+0000","digit":"4","duration_ms":120,"channel":{"id":"pbx-1.0","name":"PJSIP/trunk-00000000","state":"Up"},"application":"ariflow"}`,
	"Dial":                 `{"type":"Dial","timestamp":"2026-11-24T20:47:45.928+0000","dialstatus":"ANSWER","dialstring":"+4930123456@trunk","peer":{"id":"leg-1","name":"PJSIP/trunk-00000001","state":"Up"},"application":"ariflow"}`,
	"PlaybackFinished":     `{"type":"PlaybackFinished","timestamp":"2026-11-24T20:47:43.810+0000","playback":{"id":"pb-1","media_uri":"sound:dir-welcome","target_uri":"channel:pbx-1.0","language":"en","state":"done"},"application":"ariflow"}`,
	"ChannelUserevent":     `{"type":"ChannelUserevent","timestamp":"2026-11-30T13:52:58.710+0000","eventname":"ariflow-probe","userevent":{"ariflow_probe":"abc-1","eventname":"ariflow-probe"},"asterisk_id":"02:00:00:a1:f1:01","application":"ariflow"}`,
}

// The lean decoder must give what the library's gives, in the fields
// ariflow reads.
func TestDecodeEventMatchesLibrary(t *testing.T) {
	for typ, raw := range sampleEvents {
		t.Run(typ, func(t *testing.T) {
			ev, err := decodeEvent([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			got := library(ev)
			want, err := v6.DecodeEvent([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			if reflect.TypeOf(got) != reflect.TypeOf(want) {
				t.Fatalf("type %T, library gives %T", got, want)
			}
			if got.GetType() != want.GetType() || got.GetApplication() != want.GetApplication() {
				t.Errorf("envelope differs: %s/%s vs %s/%s", got.GetType(), got.GetApplication(), want.GetType(), want.GetApplication())
			}
			if !reflect.DeepEqual(keyIDs(got), keyIDs(want)) {
				t.Errorf("keys %v, library gives %v", keyIDs(got), keyIDs(want))
			}
			switch g := got.(type) {
			case *v6.StasisStart:
				w := want.(*v6.StasisStart)
				if !reflect.DeepEqual(g.Args, w.Args) || g.Channel.Caller.Number != w.Channel.Caller.Number || g.Channel.Name != w.Channel.Name {
					t.Errorf("got %+v, want %+v", g, w)
				}
			case *v6.ChannelDestroyed:
				w := want.(*v6.ChannelDestroyed)
				if g.Cause != w.Cause || g.CauseTxt != w.CauseTxt {
					t.Errorf("cause %d %q, want %d %q", g.Cause, g.CauseTxt, w.Cause, w.CauseTxt)
				}
			case *v6.ChannelHangupRequest:
				if g.Cause != want.(*v6.ChannelHangupRequest).Cause {
					t.Errorf("cause %d", g.Cause)
				}
			case *v6.ChannelStateChange:
				if g.Channel.State != want.(*v6.ChannelStateChange).Channel.State {
					t.Errorf("state %q", g.Channel.State)
				}
			case *v6.ChannelDtmfReceived:
				if g.Digit != want.(*v6.ChannelDtmfReceived).Digit {
					t.Errorf("digit %q", g.Digit)
				}
			case *v6.Dial:
				if g.Dialstatus != want.(*v6.Dial).Dialstatus {
					t.Errorf("dialstatus %q", g.Dialstatus)
				}
			case *v6.PlaybackFinished:
				if g.Playback != want.(*v6.PlaybackFinished).Playback {
					t.Errorf("playback %+v", g.Playback)
				}
			case *v6.ChannelUserevent:
				if g.Eventname != want.(*v6.ChannelUserevent).Eventname {
					t.Errorf("eventname %q", g.Eventname)
				}
			}
		})
	}
}

// library is the library's event inside ours (those with tech_cause).
func library(ev v6.Event) v6.Event {
	switch e := ev.(type) {
	case *ChannelDestroyed:
		return &e.ChannelDestroyed
	case *ChannelHangupRequest:
		return &e.ChannelHangupRequest
	case *UserEvent:
		return &e.ChannelUserevent
	}
	return ev
}

// A user event's string variables are read; others are left out.
func TestDecodeUserEvent(t *testing.T) {
	ev, err := decodeEvent([]byte(sampleEvents["ChannelUserevent"]))
	if err != nil {
		t.Fatal(err)
	}
	ue, ok := ev.(*UserEvent)
	if !ok {
		t.Fatalf("decoded as %T", ev)
	}
	want := map[string]string{"ariflow_probe": "abc-1", "eventname": "ariflow-probe"}
	if ue.Eventname != "ariflow-probe" || !reflect.DeepEqual(ue.Variables, want) || ue.GetApplication() != "ariflow" {
		t.Errorf("got %+v", ue)
	}
	ev, err = decodeEvent([]byte(`{"type":"ChannelUserevent","eventname":"x","userevent":{"n":1,"o":{"a":"b"},"s":"v"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.(*UserEvent).Variables; !reflect.DeepEqual(got, map[string]string{"s": "v"}) {
		t.Errorf("variables %v, want only the string one", got)
	}
	ev, err = decodeEvent([]byte(`{"type":"ChannelUserevent","eventname":"x"}`))
	if err != nil || ev.(*UserEvent).Variables != nil {
		t.Errorf("without userevent: %+v, %v", ev, err)
	}
}

// tech_cause, which the library does not read, is read beside its event;
// an Asterisk older than 20.11 sends none: 0.
func TestDecodeTechCause(t *testing.T) {
	for typ, want := range map[string]int{"ChannelDestroyed": 486, "ChannelHangupRequest": 200} {
		ev, err := decodeEvent([]byte(sampleEvents[typ]))
		if err != nil {
			t.Fatal(err)
		}
		var got int
		switch e := ev.(type) {
		case *ChannelDestroyed:
			got = e.TechCause
		case *ChannelHangupRequest:
			got = e.TechCause
		default:
			t.Fatalf("%s decoded as %T", typ, ev)
		}
		if got != want {
			t.Errorf("%s: tech_cause %d, want %d", typ, got, want)
		}
		// The envelope and keys still route it like the library's.
		if len(ev.Keys()) == 0 || ev.GetType() != typ {
			t.Errorf("%s: keys %v, type %q", typ, ev.Keys(), ev.GetType())
		}
	}
	ev, _ := decodeEvent([]byte(`{"type":"ChannelDestroyed","cause":16,"channel":{"id":"x"}}`))
	if e := ev.(*ChannelDestroyed); e.TechCause != 0 || e.Cause != 16 {
		t.Errorf("without tech_cause: %+v", e)
	}
}

func keyIDs(ev v6.Event) []string {
	var ids []string
	for _, k := range ev.Keys() {
		ids = append(ids, k.Kind+":"+k.ID)
	}
	return ids
}

func TestDecodeEventFallsBackForOtherTypes(t *testing.T) {
	ev, err := decodeEvent([]byte(`{"type":"BridgeCreated","bridge":{"id":"br-1"},"application":"ariflow"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ev.(*v6.BridgeCreated); !ok {
		t.Fatalf("got %T", ev)
	}
	if _, err := decodeEvent([]byte(`{"type":`)); err == nil {
		t.Error("broken JSON decoded")
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	raw := []byte(sampleEvents["StasisStart"])
	b.Run("ariflow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeEvent(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v6.DecodeEvent(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
