package flows

// TransferToPhoneNumber settings: numbers and timeouts, DTMF, caller ID,
// talk limits, headers, whisper, confirmation and ringback.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// mohClassRE is a music-on-hold class name as musiconhold.conf names one.
var mohClassRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ringback reads "ring", "moh", "moh:<class>" or "early-media".
func (k *blk) ringback(t *TransferToPhoneNumber) {
	t.Ringback = RingbackRing
	s, line, ok := k.str("ringback")
	if !ok {
		return
	}
	switch {
	case s == string(RingbackRing), s == string(RingbackEarlyMedia), s == string(RingbackMOH):
		t.Ringback = Ringback(s)
	case strings.HasPrefix(s, "moh:"):
		class := s[len("moh:"):]
		if !mohClassRE.MatchString(class) {
			k.errf(line, "ringback: music-on-hold class %q: want 1..64 of A-Z a-z 0-9 _ -", class)
			return
		}
		t.Ringback, t.MOHClass = RingbackMOH, class
	default:
		k.errf(line, "ringback: want ring, moh, moh:<class> or early-media, got %q", s)
	}
}

func (k *blk) transfer() *TransferToPhoneNumber {
	region := k.p.opts.DefaultRegion
	number := func(s string) (string, error) { return NormalizeNumber(s, region) }
	t := &TransferToPhoneNumber{}
	k.numbers(t, number)
	t.Resume = k.boolean("resume", true)
	t.DTMF = k.value("dtmf", ParseDTMF)
	t.DTMFTone = k.value("dtmf_tone", checkMillis(MinDTMFTone, MaxDTMFTone))
	t.DTMFGap = k.value("dtmf_gap", checkMillis(MinDTMFGap, MaxDTMFGap))
	t.CallerIDNumber = k.value("caller_id_number", number)
	t.CallerIDName = k.value("caller_id_name", func(s string) (string, error) { return s, ValidateCallerName(s) })
	t.ReturnKey = k.value("return_key", ParseReturnKey)
	if n := k.vals["return_key"]; n != nil && !t.Resume {
		k.errf(n.Line, "return_key: needs resume: true (the caller comes back to Success)")
	}
	k.talkLimit(t)
	t.Headers = k.headers()
	t.Whisper = k.value("whisper", checkMedia)
	t.Confirm = k.confirm(checkMedia)
	k.ringback(t)
	if t.Ringback == RingbackEarlyMedia && (t.Whisper != (Value{}) || t.Confirm != nil) {
		k.errf(k.vals["ringback"].Line, "ringback: early-media bridges the caller before the far end answers, so the caller would hear the whisper and the confirmation; not with whisper or confirm")
	}
	t.AnswerOnBridge = k.boolean("answer_on_bridge", false)
	if n := k.vals["answer_on_bridge"]; n != nil && t.AnswerOnBridge && t.Ringback != RingbackRing {
		k.errf(n.Line, "answer_on_bridge: the unanswered caller hears its own phone ring; not with ringback %s", t.Ringback)
	}
	if k.vals["events_url"] != nil {
		t.EventsURL = k.httpURL("events_url")
	}
	if name, line, ok := k.str("trace_header"); ok {
		if err := ValidateHeaderName(name); err != nil {
			k.errf(line, "trace_header: %v", err)
		}
		t.TraceHeader = name
	}
	t.DialVia = k.dialVia()
	if t.DialVia == DialViaPBX {
		k.pbxCarries(t)
	}
	return t
}

// dialVia reads who carries a transfer: "ari" or "pbx"; "" when not set
// (the operator's -dial-via decides).
func (k *blk) dialVia() DialVia {
	s, line, ok := k.str("dial_via")
	switch {
	case !ok:
		return ""
	case s == string(DialViaARI), s == string(DialViaPBX):
		return DialVia(s)
	}
	k.errf(line, "dial_via: want ari or pbx, got %q", s)
	return ""
}

// pbxOnly are the settings a transfer the PBX's Dial() carries can have:
// Connect's own. The others need ariflow on the call while it is bridged.
var pbxOnly = map[string]bool{"number": true, "timeout": true, "resume": true, "dtmf": true,
	"caller_id_number": true, "caller_id_name": true, "answer_on_bridge": true, "dial_via": true}

// pbxCarries refuses, with dial_via: pbx, the settings Dial() cannot
// carry: one number, Connect's settings and answer_on_bridge only.
func (k *blk) pbxCarries(t *TransferToPhoneNumber) {
	for name, n := range k.vals {
		if !pbxOnly[name] {
			k.errf(n.Line, "%s: not with dial_via: pbx (the PBX's Dial() carries only number, timeout, resume, dtmf, caller_id_number, caller_id_name and answer_on_bridge)", name)
		}
	}
	if len(t.More) > 0 {
		k.errf(k.vals["number"].Line, "number: dial_via: pbx dials one number, not a list")
	}
	if t.DTMF.Ref == nil && strings.Contains(t.DTMF.Literal, ",") {
		k.errf(k.vals["dtmf"].Line, "dtmf: the PBX's Dial() has no 750 ms pause ','; use w (500 ms) or W (1 s) with dial_via: pbx")
	}
}

// Checks of literal values (see value), normalising them.

func checkSeconds(min, max int) func(string) (string, error) {
	return func(s string) (string, error) {
		n, err := ParseTimeoutSeconds(s, 0, min, max)
		return strconv.Itoa(n), err
	}
}

func checkMillis(min, max int) func(string) (string, error) {
	return func(s string) (string, error) {
		n, err := ParseMillis(s, 0, min, max)
		return strconv.Itoa(n), err
	}
}

// checkTransferTimeout reads a transfer's ring timeout in seconds.
func checkTransferTimeout(s string) (string, error) {
	n, err := ParseTimeoutSeconds(s, TransferTimeout, 1, MaxTransferTimeout)
	return strconv.Itoa(n), err
}

func checkMedia(s string) (string, error) { return s, ValidateMediaURI(s) }

// numbers reads the number (one, or a list tried in turn) and its ring
// timeout: timeout for every number, or timeouts, one per number.
func (k *blk) numbers(t *TransferToPhoneNumber, number func(string) (string, error)) {
	if n := k.required("number"); n != nil {
		if n.Kind == yaml.SequenceNode {
			nums := k.list(n, "number", MaxNumbers, number)
			if len(nums) > 0 {
				t.Number, t.More = nums[0], nums[1:]
			}
		} else {
			t.Number = k.value("number", number)
		}
	}
	t.Timeout = k.value("timeout", checkTransferTimeout)
	n := k.vals["timeouts"]
	switch {
	case n == nil:
	case k.vals["timeout"] != nil:
		k.errf(n.Line, "timeouts: set either timeout (for every number) or timeouts (one per number), not both")
	case n.Kind != yaml.SequenceNode:
		k.errf(n.Line, "timeouts: want a list of seconds, one per number, got %s", kindName(n))
	default:
		want := 1
		if num := k.vals["number"]; num != nil && num.Kind == yaml.SequenceNode {
			want = len(num.Content)
		}
		if len(n.Content) != want {
			k.errf(n.Line, "timeouts: %d listed for %d numbers; want one per number", len(n.Content), want)
			return
		}
		t.Timeouts = k.list(n, "timeouts", MaxNumbers, checkSeconds(1, MaxTransferTimeout))
	}
}

// talkLimit reads max_talk, and the warning played warning_before it
// runs out, which apply only with it.
func (k *blk) talkLimit(t *TransferToPhoneNumber) {
	t.MaxTalk = k.value("max_talk", checkSeconds(1, MaxTalkSeconds))
	t.Warning = k.value("warning", checkMedia)
	t.WarningBefore = k.value("warning_before", checkSeconds(1, MaxWarningBefore))
	for _, name := range []string{"warning", "warning_before"} {
		if n := k.vals[name]; n != nil && k.vals["max_talk"] == nil {
			k.errf(n.Line, "%s: only applies with max_talk", name)
		}
	}
	if n := k.vals["warning_before"]; n != nil && k.vals["warning"] == nil {
		k.errf(n.Line, "warning_before: only applies with warning")
	}
	if t.MaxTalk.Ref == nil && t.WarningBefore.Ref == nil && t.MaxTalk.Literal != "" && t.WarningBefore.Literal != "" {
		talk, _ := strconv.Atoi(t.MaxTalk.Literal)
		lead, _ := strconv.Atoi(t.WarningBefore.Literal)
		if lead >= talk {
			k.errf(k.vals["warning_before"].Line, "warning_before: %d s is not less than max_talk %d s", lead, talk)
		}
	}
}

// confirmKeys are the keys a Confirm mapping takes.
var confirmKeys = []string{"prompt", "key", "timeout"}

func (k *blk) confirm(media func(string) (string, error)) *Confirm {
	n := k.vals["confirm"]
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		k.errf(n.Line, "confirm: want a mapping {prompt, key, timeout}, got %s", kindName(n))
		return nil
	}
	c := &Confirm{Key: "1", Timeout: 10}
	var hasPrompt bool
	for _, kv := range k.p.pairs(n, fmt.Sprintf("block %q: confirm: ", k.b.ID)) {
		name, v := kv[0].Value, kv[1]
		switch name {
		case "prompt":
			hasPrompt = true
			c.Prompt, _ = k.valueNode(v, "confirm: prompt", media)
		case "key":
			s, ok := k.p.scalar(v, fmt.Sprintf("block %q: confirm: key", k.b.ID), "a key")
			if ok && (len(s) != 1 || !strings.Contains("0123456789*#", s)) {
				k.errf(v.Line, "confirm: key: want one of 0-9 * #, got %q", s)
			} else if ok {
				c.Key = s
			}
		case "timeout":
			t, err := strconv.Atoi(v.Value)
			switch {
			case v.Kind != yaml.ScalarNode || v.Tag != "!!int" || err != nil:
				k.errf(v.Line, "confirm: timeout: want a whole number of seconds, got %s", kindName(v))
			case t < 1 || t > 120:
				k.errf(v.Line, "confirm: timeout: %d is out of range 1..120", t)
			default:
				c.Timeout = t
			}
		default:
			k.errf(kv[0].Line, "confirm: unknown key %q (want %s)", name, strings.Join(confirmKeys, ", "))
		}
	}
	if !hasPrompt {
		k.errf(n.Line, "confirm: missing prompt")
	}
	return c
}

// headers reads the X- header map: names are literal, values literal or
// references.
func (k *blk) headers() []Header {
	n := k.vals["headers"]
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		k.errf(n.Line, "headers: want a mapping of X- header name to value, got %s", kindName(n))
		return nil
	}
	if len(n.Content)/2 > MaxHeaders {
		k.errf(n.Line, "headers: %d headers, at most %d", len(n.Content)/2, MaxHeaders)
		return nil
	}
	var out []Header
	seen := map[string]bool{}
	for _, kv := range k.p.pairs(n, fmt.Sprintf("block %q: headers: ", k.b.ID)) {
		name := kv[0].Value
		if err := ValidateHeaderName(name); err != nil {
			k.errf(kv[0].Line, "headers: %v", err)
			continue
		}
		if seen[strings.ToLower(name)] {
			k.errf(kv[0].Line, "headers: %q listed twice (names compare without case)", name)
			continue
		}
		seen[strings.ToLower(name)] = true
		if v, ok := k.valueNode(kv[1], "headers: "+name, func(s string) (string, error) { return s, ValidateHeaderValue(s) }); ok {
			out = append(out, Header{Name: name, Value: v})
		}
	}
	return out
}
