package flows

import (
	"strings"
	"testing"
)

func TestSSMLToText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"<speak>Hello world</speak>", "Hello world"},
		{`<speak>Welcome to <sub alias="Acme">ACME</sub>.<break time="300ms"/> Press 1.</speak>`, "Welcome to Acme. Press 1."},
		{`<speak>Hold on<break time="2s"/>thanks</speak>`, "Hold on. thanks"},
		{`<speak>one<break strength="weak"/>two<break strength="none"/>three</speak>`, "one, twothree"},
		{`<speak>Code <say-as interpret-as="characters">AB12</say-as> at <say-as interpret-as="time">9:00</say-as></speak>`, "Code A B 1 2 at 9:00"},
		{`<speak><p>First</p><p>Second</p></speak>`, "First. Second."},
		{`<speak><prosody rate="slow"><emphasis>Slow</emphasis></prosody> and <amazon:effect name="whispered">quiet</amazon:effect> &amp; done</speak>`, "Slow and quiet & done"},
		{"<speak>Hi $.External.name</speak>", "Hi $.External.name"},
		{"not ssml at all", "not ssml at all"},
	} {
		got, err := SSMLToText(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("SSMLToText(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestValidateTextPrompt(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"text:Hello, world!", ""},
		{"text:Grüße aus Köln", ""},
		{"text:Hi $.Attributes.name", ""},
		{"text:", "no text"},
		{"text:   ", "no text"},
		{"text:" + strings.Repeat("x", MaxTextPrompt), ""},
		{"text:" + strings.Repeat("x", MaxTextPrompt+1), "at most 1000"},
		{"text:line\nbreak", "control or format character U+000A"},
		{"text:bidi\u202Eevil", "U+202E"},
		{"text:\xff", "not valid UTF-8"},
	} {
		err := ValidateMediaURI(tc.in) // the flow file's check
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidateMediaURI(%.30q) = %v, want %q", tc.in, err, tc.want)
		}
	}
	// From an attribute, a text prompt is refused: a caller or a webhook
	// would choose what is synthesised (and fill the cache).
	if err := ValidateMediaURIValue("text:hello"); err == nil {
		t.Error("ValidateMediaURIValue accepted a text prompt")
	}
}

func TestInterpolateText(t *testing.T) {
	a := Attributes{}
	a.Set(NSExternal, "balance", "12.50")
	a.Set(NSAttributes, "first.name", "Ada")
	for _, tc := range []struct{ in, want string }{
		{"Your balance is $.External.balance.", "Your balance is 12.50."},
		{"Hi $.Attributes.first.name, bye", "Hi Ada, bye"},
		{"Missing: $.External.nothing!", "Missing: !"},
		{"Costs $.5 or $.Foo.bar", "Costs $.5 or $.Foo.bar"},
	} {
		if got := InterpolateText(tc.in, a); got != tc.want {
			t.Errorf("InterpolateText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if refs := TextRefs("a $.External.x and $.System.CallerNumber."); len(refs) != 2 || refs[1].Key != "CallerNumber" {
		t.Errorf("TextRefs = %v", refs)
	}
}
