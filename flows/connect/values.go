package connect

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/ariflow/ariflow/flows"
)

// params are an action's parameters. Each read is remembered, so that
// what the converter did not read is noted in the report rather than
// dropped without a word.
type params struct {
	raw  map[string]json.RawMessage
	used map[string]bool
}

func newParams(raw map[string]json.RawMessage) *params {
	return &params{raw: raw, used: map[string]bool{}}
}

// str returns a string parameter; numbers and booleans come back as text.
func (p *params) str(key string) string {
	p.used[key] = true
	return rawString(p.raw[key])
}

func rawString(raw json.RawMessage) string {
	if raw == nil {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.Trim(string(raw), `"`)
}

func (p *params) has(key string) bool {
	_, ok := p.raw[key]
	return ok
}

// nested returns outer.key of an object parameter.
func (p *params) nested(outer, key string) string {
	p.used[outer+"."+key] = true
	var inner map[string]json.RawMessage
	if json.Unmarshal(p.raw[outer], &inner) != nil {
		return ""
	}
	return rawString(inner[key])
}

// ignore marks parameters read: ones the converter drops knowingly (and
// notes itself, or that mean nothing here).
func (p *params) ignore(keys ...string) {
	for _, k := range keys {
		p.used[k] = true
	}
}

// unused lists the parameters (and the fields of object parameters the
// converter read some of) that were not read, as "name=value".
func (p *params) unused() []string {
	keys := make([]string, 0, len(p.raw))
	for k := range p.raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		if p.used[k] {
			continue
		}
		var inner map[string]json.RawMessage
		partly := false
		if json.Unmarshal(p.raw[k], &inner) == nil {
			for ik := range inner {
				partly = partly || p.used[k+"."+ik]
			}
		}
		if !partly {
			out = append(out, k+"="+short(p.raw[k]))
			continue
		}
		iks := make([]string, 0, len(inner))
		for ik := range inner {
			iks = append(iks, ik)
		}
		sort.Strings(iks)
		for _, ik := range iks {
			if !p.used[k+"."+ik] {
				out = append(out, k+"."+ik+"="+short(inner[ik]))
			}
		}
	}
	return out
}

func short(raw json.RawMessage) string {
	s := strings.Join(strings.Fields(string(raw)), " ")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// channelVoice is what $.Channel always is for ariflow's calls.
const channelVoice = "VOICE"

// connectPaths are Connect's system paths that ariflow knows by another
// name.
var connectPaths = map[string]string{
	"$.StoredCustomerInput":          "$.Attributes.StoredCustomerInput",
	"$.CustomerEndpoint.Address":     "$.System." + flows.SysCallerNumber,
	"$.SystemEndpoint.Address":       "$.System." + flows.SysDialedNumber,
	"$.ContactId":                    "$.System." + flows.SysCallID,
	"$.InitialContactId":             "$.System." + flows.SysCallID,
	"$.Attributes.TextToSpeechVoice": "$.Attributes." + flows.AttrTTSVoice,
	"$.Queue.Name":                   "$." + string(flows.NSQueue) + "." + flows.QueueName,
	"$.Lex.IntentName":               "$." + string(flows.NSExternal) + ".IntentName",
}

// connectPathRE finds Connect JSONPath references, alone or in a text.
var connectPathRE = regexp.MustCompile(`\$\.[A-Za-z]+(\.[A-Za-z0-9_-]+)*`)

// ref maps one Connect reference to ariflow's: a reference, or for
// $.Channel the literal VOICE. Paths without a meaning in ariflow are
// errors that say what is known instead.
func ref(v string) (string, error) {
	if m, ok := connectPaths[v]; ok {
		return m, nil
	}
	if v == "$.Channel" {
		return channelVoice, nil
	}
	ns, rest, _ := strings.Cut(strings.TrimPrefix(v, "$."), ".")
	switch ns {
	case "Lex":
		// A -lex-map webhook answers with the slots as top-level fields.
		for _, pre := range []string{"Slots.", "SessionAttributes."} {
			if slot, ok := strings.CutPrefix(rest, pre); ok && flows.ValidKey(slot) && !strings.Contains(slot, ".") {
				return "$." + string(flows.NSExternal) + "." + slot, nil
			}
		}
		return "", fmt.Errorf("Connect's %s has no ariflow equivalent: of a Lex bot's answer (a -lex-map webhook's) ariflow knows $.Lex.IntentName, $.Lex.Slots.<name> and $.Lex.SessionAttributes.<name>", v)
	case "Queue":
		return "", fmt.Errorf("Connect's %s has no ariflow equivalent: of the queue ariflow knows only $.Queue.Name, the working queue's name", v)
	case "Attributes", "External", "System", "Transfer":
		// Connect's own, and ariflow's (a flow written for ariflow).
		if _, err := flows.ParseRef(v); err != nil {
			return "", err
		}
		return v, nil
	}
	return "", fmt.Errorf("Connect's %s has no ariflow equivalent (ariflow reads $.Attributes, $.External, $.StoredCustomerInput, $.CustomerEndpoint.Address, $.SystemEndpoint.Address, $.ContactId, $.Channel, $.Queue.Name and $.Lex.*)", v)
}

// value maps a setting that is a literal or one reference. A text with a
// reference inside it is refused here: only prompts and contact
// attributes fill references into text (see text).
func value(v string) (string, error) {
	if !strings.Contains(v, "$.") {
		return v, nil
	}
	if connectPathRE.FindString(v) == v {
		return ref(v)
	}
	return "", fmt.Errorf("%q: a text with a reference inside it is carried over only in prompts and contact attributes", v)
}

// text maps the references inside a text (a prompt, an attribute's value):
// each becomes ariflow's, and $.Channel the word VOICE.
func text(s string) (string, error) {
	var bad error
	out := connectPathRE.ReplaceAllStringFunc(s, func(m string) string {
		v, err := ref(m)
		if err != nil && bad == nil {
			bad = fmt.Errorf("text %q: %w", s, err)
		}
		return v
	})
	return out, bad
}

// attributeValue maps a contact attribute's value: a literal, a reference,
// or a text with references inside it (a template, filled in when the
// block runs).
func attributeValue(v string) (string, error) {
	if !strings.Contains(v, "$.") || connectPathRE.FindString(v) == v {
		return value(v)
	}
	return text(v)
}

// prompt maps an action's prompt: Text and SSML become a text: prompt
// (SSML reduced to text; text that is already an Asterisk media URI stays
// one); PromptId and Media.Uri go through the -prompt-map file, as ariflow
// plays Asterisk's sounds, not Connect's prompt library or S3.
func (c *converter) prompt(a *connectAction, p *params) (string, error) {
	switch {
	case p.has("Text"), p.has("SSML"):
		kind := "Text"
		if !p.has("Text") {
			kind = "SSML"
		}
		s := p.str(kind)
		if kind == "Text" && flows.ValidateMediaURI(s) == nil {
			return s, nil
		}
		if kind == "SSML" && !strings.HasPrefix(s, "$.") {
			var err error
			if s, err = flows.SSMLToText(s); err != nil {
				return "", err
			}
		}
		s = strings.Join(strings.Fields(s), " ") // line breaks in the designer's text box
		s, err := text(s)
		if err != nil {
			return "", err
		}
		prompt := flows.TextPrefix + s
		if err := flows.ValidateTextPrompt(prompt); err != nil {
			return "", fmt.Errorf("%s: %w", kind, err)
		}
		return prompt, nil
	case p.has("PromptId"):
		id := p.str("PromptId")
		if flows.ValidateMediaURI(id) == nil {
			return id, nil
		}
		if strings.HasPrefix(id, "$.") {
			return "", fmt.Errorf("PromptId %s: a prompt chosen at run time would be a Connect prompt ARN, which ariflow cannot play; choose the sound in the flow", id)
		}
		meta := c.src.meta[a.Identifier]
		display := meta.PromptName
		if display == "" {
			display = meta.display("PromptId")
		}
		return c.mappedPrompt(id, display)
	case p.has("Media"):
		uri := p.nested("Media", "Uri")
		p.ignore("Media.SourceType", "Media.MediaType")
		return c.mappedPrompt(uri, path.Base(uri))
	}
	return "", fmt.Errorf("no prompt (Text, SSML, PromptId or Media.Uri)")
}

// mappedPrompt finds a Connect prompt (or S3 audio) in the -prompt-map
// file.
func (c *converter) mappedPrompt(id, display string) (string, error) {
	what := id
	if display != "" && display != id {
		what = fmt.Sprintf("%s (%s)", id, display)
	}
	v, ok := lookup(c.opts.Prompts, id, display)
	if !ok {
		return "", fmt.Errorf("prompt %s: not in the -prompt-map file; ariflow plays Asterisk sounds, not Connect's prompt library or S3 audio: map it to one (sound:name)", what)
	}
	media, err := PromptMedia(v)
	if err != nil {
		return "", fmt.Errorf("prompt %s in the -prompt-map file: %w", what, err)
	}
	return media, nil
}

// soundExts are the file name extensions of Asterisk's sound formats: a
// sound is played by its name without one.
var soundExts = map[string]bool{".wav": true, ".wav16": true, ".gsm": true, ".ulaw": true, ".alaw": true, ".sln": true,
	".sln16": true, ".g722": true, ".g729": true, ".ogg": true, ".mp3": true}

// PromptMedia reads a -prompt-map value: an Asterisk media URI
// ("sound:custom/welcome"), or a sound file under Asterisk's sounds
// directory ("custom/welcome.wav", played as sound:custom/welcome).
func PromptMedia(v string) (string, error) {
	if flows.ValidateMediaURI(v) == nil && !flows.IsTextPrompt(v) {
		return v, nil
	}
	if ext := path.Ext(v); soundExts[strings.ToLower(ext)] && !strings.Contains(v, ":") {
		media := "sound:" + strings.TrimSuffix(v, ext)
		if err := flows.ValidateMediaURI(media); err != nil {
			return "", fmt.Errorf("%q: %w", v, err)
		}
		return media, nil
	}
	return "", fmt.Errorf("%q is neither a media URI (sound:name) nor a sound file under Asterisk's sounds directory (name.wav)", v)
}

// seconds reads a whole-seconds parameter for a YAML number.
func seconds(name, s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%s %q: want whole seconds", name, s)
	}
	return n, nil
}

// numberOrRef writes a literal whole number as a YAML number, anything
// else (a reference) as text.
func numberOrRef(v string) any {
	if n, err := strconv.Atoi(v); err == nil {
		return n
	}
	return v
}
