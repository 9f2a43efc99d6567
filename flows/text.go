package flows

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TextPrefix starts a prompt that is spoken by text-to-speech:
// "text:Welcome to ACME." The controller renders it (see controller/tts.go)
// and plays the audio like any sound.
const TextPrefix = "text:"

// MaxTextPrompt bounds a text prompt's text in bytes (Amazon Connect allows
// about as much in a Text or SSML parameter).
const MaxTextPrompt = 1000

// IsTextPrompt reports whether a prompt is a text-to-speech prompt.
func IsTextPrompt(s string) bool { return strings.HasPrefix(s, TextPrefix) }

// ValidateTextPrompt checks a "text:" prompt written in a flow file: some
// text, at most MaxTextPrompt bytes of valid UTF-8, no control characters
// (line breaks included) and no invisible format characters (bidi
// overrides, zero-width characters), which could make a prompt read as
// another in review. The text may hold attribute references
// ("$.External.balance"); the controller fills them in when it plays.
func ValidateTextPrompt(s string) error {
	text, ok := strings.CutPrefix(s, TextPrefix)
	if !ok {
		return fmt.Errorf("%w %q: a text prompt starts with %q", ErrInvalidMedia, s, TextPrefix)
	}
	if strings.TrimSpace(text) == "" {
		return fmt.Errorf("%w %q: no text after %q", ErrInvalidMedia, s, TextPrefix)
	}
	if len(text) > MaxTextPrompt {
		return fmt.Errorf("%w: text prompt of %d bytes, at most %d", ErrInvalidMedia, len(text), MaxTextPrompt)
	}
	if !utf8.ValidString(text) {
		return fmt.Errorf("%w: text prompt is not valid UTF-8", ErrInvalidMedia)
	}
	for i, r := range text {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%w: text prompt has control or format character %U at byte %d", ErrInvalidMedia, r, len(TextPrefix)+i)
		}
	}
	return nil
}

// textRefRE finds attribute references inside a text prompt. A key may hold
// dots, but a sentence's full stop after a reference is not part of it.
var textRefRE = regexp.MustCompile(`\$\.(Attributes|External|System|Transfer|Queue)\.[A-Za-z0-9_.-]*[A-Za-z0-9_-]`)

// TextRefs lists the attribute references in a text prompt's text.
func TextRefs(text string) []Ref {
	var out []Ref
	for _, m := range textRefRE.FindAllString(text, -1) {
		if r, err := ParseRef(m); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// InterpolateText replaces the attribute references in a text prompt's text
// with their values; a missing attribute reads as nothing, as in Amazon
// Connect.
func InterpolateText(text string, a Attributes) string {
	return textRefRE.ReplaceAllStringFunc(text, func(m string) string {
		r, err := ParseRef(m)
		if err != nil {
			return m
		}
		v, _ := a.Get(r)
		return v
	})
}

// MaxSSML bounds the SSML SSMLToText reads, checked before any work:
// Amazon Polly takes at most 6000 characters of SSML, which is at most
// 24,000 bytes of UTF-8. SSML comes from flow files and, once attributes
// are filled in, from callers and webhooks.
const MaxSSML = 32 << 10

// IsSSML reports whether a text looks like an SSML document.
func IsSSML(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), "<speak") }

// SSMLToText reduces SSML (Amazon Polly's dialect, as in Amazon Connect) to
// plain text for an engine that reads text:
//   - the text of every element is kept, including <say-as>'s; say-as
//     interpret-as="characters"/"spell-out"/"digits" spaces the characters
//     so they are spelt, "telephone" spaces the digits;
//   - <sub alias="..."> is replaced by its alias;
//   - <break> becomes a comma (short, weak) or a full stop (500 ms and
//     more, strong), a pause the engine makes anyway;
//   - the end of <p> and <s> is the end of a sentence;
//   - everything else (<prosody>, <emphasis>, <amazon:effect>, <lang>,
//     <mark>, <phoneme>'s alphabet) is dropped, keeping its text.
//
// Runs of white space become one space. Input over MaxSSML is refused
// before it is read; the work is linear in the input.
func SSMLToText(ssml string) (string, error) {
	if len(ssml) > MaxSSML {
		return "", fmt.Errorf("SSML: %d bytes, at most %d", len(ssml), MaxSSML)
	}
	d := xml.NewDecoder(strings.NewReader(ssml))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	var b textOut
	type frame struct {
		spell bool
		skip  bool // inside <sub>: the alias was written instead
	}
	var stack []frame
	top := func() frame {
		if len(stack) == 0 {
			return frame{}
		}
		return stack[len(stack)-1]
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("SSML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			f := top()
			switch t.Name.Local {
			case "say-as":
				switch attr(t, "interpret-as") {
				case "characters", "spell-out", "digits", "telephone":
					f.spell = true
				}
			case "sub":
				if alias := attr(t, "alias"); alias != "" && !f.skip {
					b.WriteString(" " + alias + " ")
					f.skip = true
				}
			case "break":
				if attr(t, "strength") != "none" {
					b.pause(breakMark(t))
				}
			}
			stack = append(stack, f)
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			if t.Name.Local == "p" || t.Name.Local == "s" {
				b.pause(".")
			}
		case xml.CharData:
			f := top()
			if f.skip {
				continue
			}
			s := string(t)
			if f.spell {
				s = spell(s)
			}
			b.WriteString(s)
		}
	}
	return spaceBeforeMark.ReplaceAllString(strings.Join(strings.Fields(string(b.buf)), " "), "$1"), nil
}

// textOut is SSMLToText's output. It keeps where its last non-space byte
// is, so that a pause finds it without scanning (or copying) what was
// written before: every write and pause costs what it adds.
type textOut struct {
	buf  []byte
	last int // index of the last byte that is not ' '; -1 for none
}

func (o *textOut) WriteString(s string) {
	if len(o.buf) == 0 {
		o.last = -1
	}
	o.buf = append(o.buf, s...)
	if i := strings.LastIndexFunc(s, func(r rune) bool { return r != ' ' }); i >= 0 {
		_, size := utf8.DecodeRuneInString(s[i:])
		o.last = len(o.buf) - len(s) + i + size - 1
	}
}

// pause ends the text so far with mark (a comma or a full stop) unless it
// is empty or already ends with a punctuation mark; trailing spaces go.
func (o *textOut) pause(mark string) {
	if len(o.buf) == 0 || o.last < 0 || strings.IndexByte(".,;:!?", o.buf[o.last]) >= 0 {
		return
	}
	o.buf = append(append(o.buf[:o.last+1], mark...), ' ')
	o.last = len(o.buf) - 2
}

var spaceBeforeMark = regexp.MustCompile(`\s+([.,;:!?])`)

func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// breakMark is the punctuation that gives about the pause a <break> asks for.
func breakMark(t xml.StartElement) string {
	switch attr(t, "strength") {
	case "x-weak", "weak":
		return ","
	case "strong", "x-strong":
		return "."
	}
	if tm := attr(t, "time"); tm != "" {
		ms := 0.0
		if v, ok := strings.CutSuffix(tm, "ms"); ok {
			ms, _ = strconv.ParseFloat(v, 64)
		} else if v, ok := strings.CutSuffix(tm, "s"); ok {
			s, _ := strconv.ParseFloat(v, 64)
			ms = s * 1000
		}
		if ms < 500 {
			return ","
		}
	}
	return "."
}

// spell separates the letters and digits of a word so they are read one by
// one ("AB12" -> "A B 1 2").
func spell(s string) string {
	var parts []string
	for _, r := range strings.TrimSpace(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			parts = append(parts, string(r))
		}
	}
	return " " + strings.Join(parts, " ") + " "
}
