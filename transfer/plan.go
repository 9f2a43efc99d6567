package transfer

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/record"
)

// Plan is a transfer block resolved for one call: every value in it is
// checked and safe to hand to Asterisk. It is saved with the call's record,
// so that a process taking the call over carries on with the same plan
// even if the flow changed meanwhile.
type Plan struct {
	// Targets are the numbers (or an agent's endpoint) to try in order.
	Targets []record.Target
	Digits  string // DTMF to send after answer; ',' is a pause
	// CallerIDNumber and CallerIDName are what the far end is shown.
	CallerIDNumber, CallerIDName string
	Resume                       bool
	Agent                        bool
	Options                      Options
}

// Options are a transfer's options beyond Amazon Connect's.
type Options struct {
	Tone, Gap  time.Duration // DTMF cadence
	ReturnKey  string        // keys that end the far end and bring the caller back
	MaxTalk    time.Duration // bridged time before the far end is hung up (0: none)
	Warning    string        // media played to the caller WarnBefore the limit
	WarnBefore time.Duration
	Headers    []record.Header // X- headers on the INVITE
	Whisper    string          // media for the far end before the bridge
	Confirm    *Confirm
	Ringback   flows.Ringback // "" is ring
	MOHClass   string
	EventsURL  string // leg events ("": none)
	// TraceHeader is the X- header that carries the trace context ("": none).
	TraceHeader string
}

// Confirm asks the far end for a key before it is bridged.
type Confirm struct {
	Prompt  string
	Key     string
	Timeout time.Duration
}

// Settings are the operator's settings a plan is resolved with.
type Settings struct {
	// DialTemplate builds the dial string for a phone number; {number} is
	// replaced by the validated E.164 number.
	DialTemplate  string
	DefaultRegion string
}

// Transfer ring timeouts, in seconds: Amazon Connect's range and default.
const (
	defaultTimeout = 30
	maxTimeout     = 600
)

// The default DTMF cadence (a block's dtmf_tone and dtmf_gap).
const (
	dtmfTone = flows.DefaultDTMFTone * time.Millisecond
	dtmfGap  = flows.DefaultDTMFGap * time.Millisecond
)

// DialString fills the trunk template; number is already validated.
func DialString(template, number string) string {
	return strings.ReplaceAll(template, "{number}", number)
}

// Resolve turns a TransferToPhoneNumber block into a plan for a call
// with attrs. Any value that is not what it should be is an error, and
// nothing is dialled: the numbers of a list are all resolved before the
// first is dialled.
func Resolve(b *flows.TransferToPhoneNumber, attrs flows.Attributes, s Settings) (Plan, error) {
	r := resolver{attrs: attrs, s: s}
	p := Plan{Resume: b.Resume}
	var err error
	if p.Targets, err = r.targets(b); err != nil {
		return Plan{}, err
	}
	if err := r.options(b, &p.Options); err != nil {
		return Plan{}, err
	}
	if p.Digits, err = r.str("dtmf", b.DTMF, flows.ParseDTMF); err != nil {
		return Plan{}, err
	}
	cidNum, err := r.str("caller_id_number", b.CallerIDNumber, r.normalizeNumber)
	if err != nil {
		return Plan{}, err
	}
	cidName, err := r.str("caller_id_name", b.CallerIDName, func(s string) (string, error) { return s, flows.ValidateCallerName(s) })
	if err != nil {
		return Plan{}, err
	}
	p.CallerIDNumber, p.CallerIDName = presentedID(cidNum, cidName,
		attrs[flows.NSSystem][flows.SysCallerNumber], attrs[flows.NSSystem][flows.SysCallerName])
	return p, nil
}

// RingTimeout resolves a block's ring timeout: whole seconds, 1 to 600,
// 30 when left out.
func RingTimeout(v flows.Value, attrs flows.Attributes) (time.Duration, error) {
	secs := defaultTimeout
	if !v.IsZero() {
		s, err := flows.Resolve(v, attrs)
		if err != nil {
			return 0, fmt.Errorf("timeout: %w", err)
		}
		if secs, err = flows.ParseTimeoutSeconds(s, defaultTimeout, 1, maxTimeout); err != nil {
			return 0, fmt.Errorf("timeout: %w", err)
		}
	}
	return time.Duration(secs) * time.Second, nil
}

type resolver struct {
	attrs flows.Attributes
	s     Settings
}

func (r resolver) normalizeNumber(raw string) (string, error) {
	return flows.NormalizeNumber(raw, r.s.DefaultRegion)
}

// str resolves v and checks what came from an attribute. Literals were
// validated and normalised when the flow was loaded, so they are used as
// they are; checking them again per call is measurable CPU under load.
func (r resolver) str(name string, v flows.Value, check func(string) (string, error)) (string, error) {
	if v.IsZero() {
		return "", nil
	}
	s, err := flows.Resolve(v, r.attrs)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if v.Ref == nil {
		return s, nil
	}
	if s, err = check(s); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// num resolves a number option with its default and bounds.
func (r resolver) num(name string, v flows.Value, def, min, max int, parse func(string, int, int, int) (int, error)) (int, error) {
	s, err := r.str(name, v, func(s string) (string, error) {
		n, err := parse(s, def, min, max)
		return strconv.Itoa(n), err
	})
	if err != nil || s == "" {
		return def, err
	}
	return strconv.Atoi(s)
}

func (r resolver) targets(b *flows.TransferToPhoneNumber) ([]record.Target, error) {
	nums := b.Numbers()
	out := make([]record.Target, 0, len(nums))
	for i, v := range nums {
		what := "number"
		if len(nums) > 1 {
			what = fmt.Sprintf("number %d", i+1)
		}
		number, err := r.str(what, v, r.normalizeNumber)
		if err != nil {
			return nil, err
		}
		tv := b.Timeout
		if i < len(b.Timeouts) {
			tv = b.Timeouts[i]
		}
		timeout, err := RingTimeout(tv, r.attrs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, record.Target{Number: number, Dial: DialString(r.s.DialTemplate, number), TimeoutS: int(timeout / time.Second)})
	}
	return out, nil
}

func (r resolver) options(b *flows.TransferToPhoneNumber, o *Options) error {
	tone, err := r.num("dtmf_tone", b.DTMFTone, flows.DefaultDTMFTone, flows.MinDTMFTone, flows.MaxDTMFTone, flows.ParseMillis)
	if err != nil {
		return err
	}
	gap, err := r.num("dtmf_gap", b.DTMFGap, flows.DefaultDTMFGap, flows.MinDTMFGap, flows.MaxDTMFGap, flows.ParseMillis)
	if err != nil {
		return err
	}
	o.Tone, o.Gap = time.Duration(tone)*time.Millisecond, time.Duration(gap)*time.Millisecond
	if o.ReturnKey, err = r.str("return_key", b.ReturnKey, flows.ParseReturnKey); err != nil {
		return err
	}
	talk, err := r.num("max_talk", b.MaxTalk, 0, 1, flows.MaxTalkSeconds, flows.ParseTimeoutSeconds)
	if err != nil {
		return err
	}
	o.MaxTalk = time.Duration(talk) * time.Second
	media := func(s string) (string, error) { return s, flows.ValidateMediaURIValue(s) }
	if o.Warning, err = r.str("warning", b.Warning, media); err != nil {
		return err
	}
	lead, err := r.num("warning_before", b.WarningBefore, flows.DefaultWarning, 1, flows.MaxWarningBefore, flows.ParseTimeoutSeconds)
	if err != nil {
		return err
	}
	if o.Warning != "" {
		if lead >= talk {
			return fmt.Errorf("warning_before: %d s is not less than max_talk %d s", lead, talk)
		}
		o.WarnBefore = time.Duration(lead) * time.Second
	}
	if o.Whisper, err = r.str("whisper", b.Whisper, media); err != nil {
		return err
	}
	if cf := b.Confirm; cf != nil {
		prompt, err := r.str("confirm: prompt", cf.Prompt, media)
		if err != nil {
			return err
		}
		o.Confirm = &Confirm{Prompt: prompt, Key: cf.Key, Timeout: time.Duration(cf.Timeout) * time.Second}
	}
	o.Ringback, o.MOHClass, o.EventsURL, o.TraceHeader = b.Ringback, b.MOHClass, b.EventsURL, b.TraceHeader
	for _, h := range b.Headers {
		v, err := r.str("headers: "+h.Name, h.Value, func(s string) (string, error) { return s, flows.ValidateHeaderValue(s) })
		if err != nil {
			return err
		}
		o.Headers = append(o.Headers, record.Header{Name: h.Name, Value: v})
	}
	return nil
}

// BeyondConnect tells whether the plan uses an option beyond Amazon
// Connect's own settings (a talk limit, a return key, other ringback, …).
func (p Plan) BeyondConnect() bool { return p.Options.state() != nil }

// state is the options' persisted form.
func (o Options) state() *record.TransferOptions {
	s := &record.TransferOptions{
		ToneMs: int(o.Tone / time.Millisecond), GapMs: int(o.Gap / time.Millisecond), ReturnKey: o.ReturnKey,
		MaxTalkS: int(o.MaxTalk / time.Second), Warning: o.Warning, WarnBeforeS: int(o.WarnBefore / time.Second),
		Whisper: o.Whisper, MOHClass: o.MOHClass, EventsURL: o.EventsURL, Headers: o.Headers, TraceHeader: o.TraceHeader,
	}
	if o.Ringback != flows.RingbackRing {
		s.Ringback = string(o.Ringback)
	}
	if o.Confirm != nil {
		s.ConfirmPrompt, s.ConfirmKey, s.ConfirmS = o.Confirm.Prompt, o.Confirm.Key, int(o.Confirm.Timeout/time.Second)
	}
	if s.ToneMs == int(dtmfTone/time.Millisecond) && s.GapMs == int(dtmfGap/time.Millisecond) {
		s.ToneMs, s.GapMs = 0, 0 // the defaults: left out of the record
	}
	if reflect.ValueOf(*s).IsZero() {
		return nil
	}
	return s
}

// optionsOf rebuilds options from their persisted form.
func optionsOf(s *record.TransferOptions) Options {
	o := Options{Tone: dtmfTone, Gap: dtmfGap}
	if s == nil {
		return o
	}
	if s.ToneMs > 0 {
		o.Tone = time.Duration(s.ToneMs) * time.Millisecond
	}
	if s.GapMs > 0 {
		o.Gap = time.Duration(s.GapMs) * time.Millisecond
	}
	o.ReturnKey, o.Warning, o.Whisper = s.ReturnKey, s.Warning, s.Whisper
	o.MaxTalk, o.WarnBefore = time.Duration(s.MaxTalkS)*time.Second, time.Duration(s.WarnBeforeS)*time.Second
	o.Ringback, o.MOHClass, o.EventsURL, o.Headers = flows.Ringback(s.Ringback), s.MOHClass, s.EventsURL, s.Headers
	o.TraceHeader = s.TraceHeader
	if s.ConfirmPrompt != "" {
		o.Confirm = &Confirm{Prompt: s.ConfirmPrompt, Key: s.ConfirmKey, Timeout: time.Duration(s.ConfirmS) * time.Second}
	}
	return o
}
