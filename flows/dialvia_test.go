package flows

import (
	"strings"
	"testing"
)

func TestDialVia(t *testing.T) {
	num := "    number: \"+4930123456\"\n"
	for setting, want := range map[string]DialVia{
		"":                                    "",
		"    dial_via: ari\n":                 DialViaARI,
		"    dial_via: pbx\n":                 DialViaPBX,
		"    dial_via: pbx\n    dtmf: 12w#\n": DialViaPBX,
		"    dial_via: pbx\n    dtmf: $.Attributes.d\n    timeout: 20\n    caller_id_number: \"+4930999\"\n    caller_id_name: Desk\n    answer_on_bridge: true\n": DialViaPBX,
	} {
		f, err := Parse("o.yaml", []byte(optFlow(num+setting)), LoadOptions{})
		if err != nil {
			t.Fatalf("%q: %v", setting, err)
		}
		if got := f.Blocks["a"].Transfer.DialVia; got != want {
			t.Errorf("%q: dial_via %q, want %q", setting, got, want)
		}
	}
	for settings, want := range map[string]string{
		num + "    dial_via: asterisk\n":                                      "dial_via: want ari or pbx, got \"asterisk\"",
		num + "    dial_via: pbx\n    dtmf: \"1,2\"\n":                        "dtmf: the PBX's Dial() has no 750 ms pause",
		num + "    dial_via: pbx\n    return_key: \"*\"\n":                    "return_key: not with dial_via: pbx",
		num + "    dial_via: pbx\n    max_talk: 60\n":                         "max_talk: not with dial_via: pbx",
		num + "    dial_via: pbx\n    ringback: moh\n":                        "ringback: not with dial_via: pbx",
		num + "    dial_via: pbx\n    dtmf_gap: 200\n":                        "dtmf_gap: not with dial_via: pbx",
		"    number: [\"+4930123456\", \"+4930123457\"]\n    dial_via: pbx\n": "number: dial_via: pbx dials one number, not a list",
	} {
		_, err := Parse("o.yaml", []byte(optFlow(settings)), LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "o.yaml:") {
			t.Errorf("%q: error %v, want one naming the place and %q", settings, err, want)
		}
	}
}

func TestAgentDialVia(t *testing.T) {
	agent := func(settings string) string {
		return "name: x\nversion: \"1\"\nentry: [x]\nstart: a\nblocks:\n  a:\n    type: TransferToAgent\n" + settings
	}
	f, err := Parse("a.yaml", []byte(agent("    endpoint: \"+4930111009\"\n    dial_via: pbx\n")), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Blocks["a"].Agent.DialVia; got != DialViaPBX {
		t.Errorf("dial_via %q, want pbx", got)
	}
	_, err = Parse("a.yaml", []byte(agent("    context: agents\n    extension: \"100\"\n    dial_via: pbx\n")), LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "dial_via: only applies with endpoint") {
		t.Errorf("context with dial_via: error %v", err)
	}
}
