package flows

import (
	"fmt"
	"runtime"
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

// SSMLToText refuses input over MaxSSML before reading it, and keeps the
// text of what it reads, including multi-byte text before a pause.
func TestSSMLToTextBound(t *testing.T) {
	if _, err := SSMLToText("<speak>" + strings.Repeat("a<break/>", MaxSSML/9) + "</speak>"); err == nil || !strings.Contains(err.Error(), "at most 32768") {
		t.Errorf("SSML over MaxSSML: %v", err)
	}
	got, err := SSMLToText("<speak>Grüß<break/>dich  <break time=\"1s\"/> ok</speak>")
	if err != nil || got != "Grüß. dich. ok" {
		t.Errorf("got %q, %v", got, err)
	}
}

// bytesAllocated is what one SSMLToText call allocates, the least of a
// few runs (allocation sizes do not depend on the machine's load).
func bytesAllocated(t *testing.T, in string) uint64 {
	t.Helper()
	best := ^uint64(0)
	for i := 0; i < 5; i++ {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := SSMLToText(in); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		best = min(best, after.TotalAlloc-before.TotalAlloc)
	}
	return best
}

// SSMLToText's work is linear in its input: four times the breaks cost
// about four times the memory, not sixteen (each pause used to copy all
// the text before it: 40,000 breaks took 3.2 s). Memory, not time, so
// that a busy machine cannot make it pass or fail.
func TestSSMLToTextLinear(t *testing.T) {
	doc := func(n int) string { return "<speak>" + strings.Repeat("a<break/>", n) + "</speak>" }
	small, large := bytesAllocated(t, doc(800)), bytesAllocated(t, doc(3200))
	if ratio := float64(large) / float64(small); ratio > 6 {
		t.Errorf("4x the input allocated %.1fx the memory (%d -> %d bytes): not linear", ratio, small, large)
	}
}

func BenchmarkSSMLToText(b *testing.B) {
	for _, n := range []int{100, 1000, 3600} {
		in := "<speak>" + strings.Repeat("a<break/>", n) + "</speak>"
		b.Run(fmt.Sprintf("breaks=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := SSMLToText(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
