package flows

import (
	"strings"
	"testing"
)

func TestTransferRingbackAndEventsURL(t *testing.T) {
	for _, tc := range []struct {
		setting  string
		ringback Ringback
		class    string
	}{
		{"", RingbackRing, ""},
		{"    ringback: ring\n", RingbackRing, ""},
		{"    ringback: moh\n", RingbackMOH, ""},
		{"    ringback: moh:jazz_2-b\n", RingbackMOH, "jazz_2-b"},
		{"    ringback: early-media\n", RingbackEarlyMedia, ""},
	} {
		f, err := Parse("o.yaml", []byte(optFlow("    number: \"+4930123456\"\n"+tc.setting+"    events_url: https://hooks.example.com/legs?x=1\n")), LoadOptions{})
		if err != nil {
			t.Fatalf("%q: %v", tc.setting, err)
		}
		tr := f.Blocks["a"].Transfer
		if tr.Ringback != tc.ringback || tr.MOHClass != tc.class || tr.EventsURL != "https://hooks.example.com/legs?x=1" {
			t.Errorf("%q: ringback %q class %q events_url %q", tc.setting, tr.Ringback, tr.MOHClass, tr.EventsURL)
		}
	}
	for setting, want := range map[string]string{
		"    ringback: tone\n":                 "ringback: want ring, moh",
		"    ringback: \"moh:\"\n":             "music-on-hold class",
		"    ringback: \"moh:a,b\"\n":          "music-on-hold class",
		"    ringback: $.Attributes.rb\n":      "ringback: want ring",
		"    events_url: ftp://x/y\n":          "events_url: \"ftp://x/y\" must be an absolute http or https URL",
		"    events_url: /relative\n":          "events_url",
		"    events_url: $.Attributes.hook\n":  "events_url",
		"    events_url: [http://a.example]\n": "events_url",
	} {
		_, err := Parse("o.yaml", []byte(optFlow("    number: \"+4930123456\"\n"+setting)), LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", setting, err, want)
		}
	}
}

func TestTransferAnswerOnBridge(t *testing.T) {
	for setting, want := range map[string]bool{
		"":                              false,
		"    answer_on_bridge: false\n": false,
		"    answer_on_bridge: true\n":  true,
		"    answer_on_bridge: true\n    ringback: ring\n": true,
	} {
		f, err := Parse("o.yaml", []byte(optFlow("    number: \"+4930123456\"\n"+setting)), LoadOptions{})
		if err != nil {
			t.Fatalf("%q: %v", setting, err)
		}
		if got := f.Blocks["a"].Transfer.AnswerOnBridge; got != want {
			t.Errorf("%q: answer_on_bridge %v, want %v", setting, got, want)
		}
	}
	for setting, want := range map[string]string{
		"    answer_on_bridge: yes please\n":                      "answer_on_bridge: want true or false",
		"    answer_on_bridge: true\n    ringback: moh\n":         "answer_on_bridge: the unanswered caller hears its own phone ring; not with ringback moh",
		"    answer_on_bridge: true\n    ringback: early-media\n": "not with ringback early-media",
	} {
		_, err := Parse("o.yaml", []byte(optFlow("    number: \"+4930123456\"\n"+setting)), LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "o.yaml:") {
			t.Errorf("%q: error %v, want one naming the place and %q", setting, err, want)
		}
	}
}
