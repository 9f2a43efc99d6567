package flows

import (
	"strings"
	"testing"
)

// optFlow is a flow whose one transfer block takes the given settings
// (indented by four spaces, one per line).
func optFlow(settings string) string {
	return `name: x
version: "1"
entry: [x]
start: a
blocks:
  a:
    type: TransferToPhoneNumber
` + settings + `    branches: {Success: b, CallFailed: b, Timeout: b}
  b:
    type: Disconnect
`
}

func TestTransferOptionsParse(t *testing.T) {
	f, err := Parse("o.yaml", []byte(optFlow(`    number: ["+4930123456", $.Attributes.second, "+4930123457"]
    timeouts: [5, $.Attributes.wait, 7]
    dtmf: "1,2w3W"
    dtmf_tone: 150
    dtmf_gap: $.Attributes.gap
    return_key: "*#"
    max_talk: 60
    warning: sound:beep
    warning_before: 10
    headers: {X-Tracking-Id: $.Attributes.tracking, X-Source: "ariflow demo"}
    whisper: sound:beep
    confirm: {prompt: $.Attributes.press, key: "#", timeout: 5}
`)), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr := f.Blocks["a"].Transfer
	nums := tr.Numbers()
	if len(nums) != 3 || nums[0].Literal != "+4930123456" || nums[1].Ref == nil || nums[2].Literal != "+4930123457" {
		t.Errorf("numbers %+v", nums)
	}
	if len(tr.Timeouts) != 3 || tr.Timeouts[0].Literal != "5" || tr.Timeouts[1].Ref == nil {
		t.Errorf("timeouts %+v", tr.Timeouts)
	}
	if tr.DTMF.Literal != "1,2w3W" || tr.DTMFTone.Literal != "150" || tr.DTMFGap.Ref == nil {
		t.Errorf("dtmf %+v %+v %+v", tr.DTMF, tr.DTMFTone, tr.DTMFGap)
	}
	if tr.ReturnKey.Literal != "*#" || tr.MaxTalk.Literal != "60" || tr.Warning.Literal != "sound:beep" || tr.WarningBefore.Literal != "10" {
		t.Errorf("talk options %+v", tr)
	}
	if len(tr.Headers) != 2 || tr.Headers[0].Name != "X-Tracking-Id" || tr.Headers[0].Value.Ref == nil || tr.Headers[1].Value.Literal != "ariflow demo" {
		t.Errorf("headers %+v", tr.Headers)
	}
	if tr.Whisper.Literal != "sound:beep" || tr.Confirm == nil || tr.Confirm.Prompt.Ref == nil || tr.Confirm.Key != "#" || tr.Confirm.Timeout != 5 {
		t.Errorf("whisper %+v confirm %+v", tr.Whisper, tr.Confirm)
	}
}

func TestTransferOptionsErrors(t *testing.T) {
	for _, tc := range []struct{ settings, want string }{
		{"    number: []\n", `o.yaml:8: block "a": number: the list is empty`},
		{"    number: [\"+4930123456\", \"+4930123457\", \"+4930123458\", \"+4930123459\", \"+4930123450\", \"+4930123451\"]\n", "number: 6 items, at most 5"},
		{"    number: [\"+4930123456\", \"123&PJSIP/9\"]\n", `o.yaml:8: block "a": number: invalid phone number "123&PJSIP/9"`},
		{"    number: \"+4930123456\"\n    timeout: 5\n    timeouts: [5]\n", `o.yaml:10: block "a": timeouts: set either timeout`},
		{"    number: [\"+4930123456\", \"+4930123457\"]\n    timeouts: [5]\n", `o.yaml:9: block "a": timeouts: 1 listed for 2 numbers`},
		{"    number: [\"+4930123456\", \"+4930123457\"]\n    timeouts: [5, 601]\n", `o.yaml:9: block "a": timeouts: invalid timeout: 601 seconds is outside 1..600`},
		{"    number: \"+4930123456\"\n    dtmf_tone: 80\n", `o.yaml:9: block "a": dtmf_tone: invalid milliseconds: 80 ms is outside 100..500`},
		{"    number: \"+4930123456\"\n    dtmf_gap: 50\n", `o.yaml:9: block "a": dtmf_gap: invalid milliseconds: 50 ms is outside 100..2000`},
		{"    number: \"+4930123456\"\n    dtmf_gap: 1e3\n", `dtmf_gap: invalid milliseconds: "1e3"`},
		{"    number: \"+4930123456\"\n    return_key: \"*****\"\n", `o.yaml:9: block "a": return_key: invalid return key: "*****" is longer than 4 keys`},
		{"    number: \"+4930123456\"\n    return_key: \"*,\"\n", `return_key: invalid return key: character ',' at position 2`},
		{"    number: \"+4930123456\"\n    max_talk: 0\n", `o.yaml:9: block "a": max_talk: invalid timeout: 0 seconds is outside 1..86400`},
		{"    number: \"+4930123456\"\n    warning: sound:beep\n", `o.yaml:9: block "a": warning: only applies with max_talk`},
		{"    number: \"+4930123456\"\n    max_talk: 10\n    warning: sound:beep\n    warning_before: 10\n", `o.yaml:11: block "a": warning_before: 10 s is not less than max_talk 10 s`},
		{"    number: \"+4930123456\"\n    max_talk: 10\n    warning: http://x/y.wav\n", `o.yaml:10: block "a": warning:`},
		{"    number: \"+4930123456\"\n    headers: {Tracking: \"1\"}\n", `o.yaml:9: block "a": headers: invalid SIP header: name "Tracking" must start with X-`},
		{"    number: \"+4930123456\"\n    headers: {\"X-A,b)\": \"1\"}\n", `headers: invalid SIP header: name "X-A,b)": character ',' at position 4`},
		{"    number: \"+4930123456\"\n    headers: {x-ariflow-undialled: \"1\"}\n", `headers: invalid SIP header: name "x-ariflow-undialled" is ariflow's own`},
		{"    number: \"+4930123456\"\n    headers: {X-A: \"a\\r\\nVia: evil\"}\n", `o.yaml:9: block "a": headers: X-A: invalid SIP header: value: character U+000D at position 2`},
		{"    number: \"+4930123456\"\n    headers: {X-A: \"" + strings.Repeat("a", 257) + "\"}\n", `value of 257 bytes, at most 256`},
		{"    number: \"+4930123456\"\n    headers: {X-A: \"1\", x-a: \"2\"}\n", `headers: "x-a" listed twice`},
		{"    number: \"+4930123456\"\n    headers: {X-1: a, X-2: a, X-3: a, X-4: a, X-5: a, X-6: a, X-7: a, X-8: a, X-9: a, X-10: a, X-11: a}\n", `headers: 11 headers, at most 10`},
		{"    number: \"+4930123456\"\n    whisper: file:///etc/passwd\n", `o.yaml:9: block "a": whisper:`},
		{"    number: \"+4930123456\"\n    confirm: {key: \"1\"}\n", `o.yaml:9: block "a": confirm: missing prompt`},
		{"    number: \"+4930123456\"\n    confirm: {prompt: sound:beep, key: \"12\"}\n", `confirm: key: want one of 0-9 * #, got "12"`},
		{"    number: \"+4930123456\"\n    confirm: {prompt: sound:beep, timeout: 0}\n", `confirm: timeout: 0 is out of range 1..120`},
		{"    number: \"+4930123456\"\n    confirm: {prompt: sound:beep, wait: 3}\n", `confirm: unknown key "wait"`},
	} {
		_, err := Parse("o.yaml", []byte(optFlow(tc.settings)), LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("settings\n%s: got %v\nwant %q", tc.settings, err, tc.want)
		}
	}
	src := strings.Replace(optFlow("    number: \"+4930123456\"\n    resume: false\n    return_key: \"*\"\n"), "Success: b, ", "", 1)
	if _, err := Parse("o.yaml", []byte(src), LoadOptions{}); err == nil || !strings.Contains(err.Error(), `o.yaml:10: block "a": return_key: needs resume: true`) {
		t.Errorf("return_key without resume: %v", err)
	}
}

func TestDTMFPause(t *testing.T) {
	for ch, want := range map[byte]int{',': 750, 'w': 500, 'W': 1000, '1': 0, '#': 0} {
		if got := DTMFPause(ch); got != want {
			t.Errorf("DTMFPause(%q) = %d, want %d", ch, got, want)
		}
	}
}

func TestValidateHeaderValue(t *testing.T) {
	for _, ok := range []string{"", "4711", "Müller & Söhne; x=1", strings.Repeat("a", 256)} {
		if err := ValidateHeaderValue(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"a\nb", "a\rb", "\x00", "a\u202eb", "\xff", strings.Repeat("a", 257)} {
		if err := ValidateHeaderValue(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
