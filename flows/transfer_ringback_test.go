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
