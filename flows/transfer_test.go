package flows

import (
	"errors"
	"strings"
	"testing"
)

// Test numbers: +4930123456, +4930555000, +4930111000 (Berlin) and
// +442079460000 (London) are valid per libphonenumber; +441632960000 (the
// UK drama range) and +4912 are not.
func TestNormalizeNumber(t *testing.T) {
	for _, tc := range []struct {
		raw, region, want, wantErr string
	}{
		{"+4930123456", "", "+4930123456", ""},
		{"+4930555000", "", "+4930555000", ""},
		{"+4930111000", "", "+4930111000", ""},
		{"+442079460000", "", "+442079460000", ""},
		{"+12025550123", "", "+12025550123", ""},
		{"+4915123456789", "", "+4915123456789", ""},
		{"030123456", "DE", "+4930123456", ""},
		{"030123456", "de", "+4930123456", ""},
		{"004930123456", "DE", "+4930123456", ""},
		{"030123456", "", "", "needs a leading +"},
		{"+441632960000", "", "", "not a valid number"},
		{"+4912", "", "", "not a valid number"},
		{"+999123456", "", "", "invalid country code"},
		{"", "", "", "empty"},
		{"+", "", "", "no digits"},
		{"++4930123456", "", "", `character '+' at position 2`},
		// Injection attempts: none of these may reach a dial string.
		{"123&PJSIP/999", "DE", "", `character '&' at position 4`},
		{"123@other", "DE", "", `character '@' at position 4`},
		{"123)", "DE", "", `character ')' at position 4`},
		{"123,g", "DE", "", `character ',' at position 4`},
		{"+49 30 123", "", "", `character ' ' at position 4`},
		{"+4930abc", "", "", `character 'a' at position 6`},
		{"\x00", "DE", "", `character '\x00' at position 1`},
		{"+4930123456\n", "", "", `character '\n' at position 12`},
		{" +4930123456", "", "", `character ' ' at position 1`},
		{"+4930123456/", "", "", `character '/' at position 12`},
		{"+49301234567890123", "", "", "too long"},
		{"+４９30123456", "", "", "not allowed"},
	} {
		got, err := NormalizeNumber(tc.raw, tc.region)
		if tc.wantErr != "" {
			if !errors.Is(err, ErrInvalidNumber) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("NormalizeNumber(%q, %q) = %q, %v; want error %q", tc.raw, tc.region, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NormalizeNumber(%q, %q) = %q, %v; want %q", tc.raw, tc.region, got, err, tc.want)
		}
	}
}

func TestParseDTMF(t *testing.T) {
	for _, tc := range []struct{ in, want, wantErr string }{
		{"", "", ""},
		{"1234567890", "1234567890", ""},
		{"*#,,123#", "*#,,123#", ""},
		{"ABCD", "ABCD", ""},
		{"12ab,cd", "12AB,CD", ""},
		{strings.Repeat("1", 50), strings.Repeat("1", 50), ""},
		{strings.Repeat("1", 51), "", "51 characters, at most 50"},
		{"1234x", "", `character 'x' at position 5`},
		{"12 3", "", `character ' ' at position 3`},
		{"1e", "", `character 'e' at position 2`},
		{"1w2W3,", "1w2W3,", ""},
		{"x", "", `character 'x' at position 1`},
		{"1;2", "", `character ';' at position 2`},
		{"1&2", "", `character '&' at position 2`},
		{"\x00", "", `character '\x00' at position 1`},
		{"a\n", "", `character '\n' at position 2`},
		{"1€", "", `character '€' at position 2`},
	} {
		got, err := ParseDTMF(tc.in)
		if tc.wantErr != "" {
			if !errors.Is(err, ErrInvalidDTMF) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseDTMF(%q) = %q, %v; want error %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDTMF(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseTimeoutSeconds(t *testing.T) {
	for _, tc := range []struct {
		in      string
		min     int
		want    int
		wantErr string
	}{
		{"", 1, 30, ""},
		{"30", 1, 30, ""},
		{"1", 1, 1, ""},
		{"600", 1, 600, ""},
		{"0", 0, 0, ""},
		{"007", 1, 7, ""},
		{"0", 1, 0, "0 seconds is outside 1..600"},
		{"601", 1, 0, "601 seconds is outside 1..600"},
		{"30.5", 1, 0, `"30.5" is not a whole number`},
		{"-1", 1, 0, `"-1" is not a whole number`},
		{"+5", 1, 0, `"+5" is not a whole number`},
		{"abc", 1, 0, `"abc" is not a whole number`},
		{"1e3", 1, 0, `"1e3" is not a whole number`},
		{" 30", 1, 0, `" 30" is not a whole number`},
		{"99999999999999999999", 1, 0, "not a whole number"},
	} {
		got, err := ParseTimeoutSeconds(tc.in, 30, tc.min, 600)
		if tc.wantErr != "" {
			if !errors.Is(err, ErrInvalidTimeout) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseTimeoutSeconds(%q) = %d, %v; want error %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseTimeoutSeconds(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestValidateCallerName(t *testing.T) {
	for _, tc := range []struct{ in, wantErr string }{
		{"", ""},
		{"ACME Support", ""},
		{"Müller & Söhne GmbH", ""},
		{"Служба поддержки", ""},
		{"株式会社", ""},
		{strings.Repeat("a", 80), ""},
		{strings.Repeat("a", 81), "81 bytes, at most 80"},
		{strings.Repeat("ü", 41), "82 bytes"},
		{`ACME "Support"`, `character '"' at position 6`},
		{"O'Brien", `character '\''`},
		{`a\b`, `character '\\'`},
		{"<sip:x>", `character '<' at position 1`},
		{"a>b", `character '>' at position 2`},
		{"a\r\nVia: evil", `character '\r' at position 2`},
		{"a\nb", `character '\n'`},
		{"a\tb", `character '\t'`},
		{"\x00", `character '\x00'`},
		{"a\x7f", `character '\x7f'`},
		{"a\u2028b", `character '\u2028'`},
		{"\xff", "not valid UTF-8"},
		{"ACME\u202eroppuS", "U+202E at position 5"},
		{"\u202aACME", "U+202A"},
		{"\u202bx", "U+202B"},
		{"\u202cx", "U+202C"},
		{"\u202dx", "U+202D"},
		{"\u2066x", "U+2066"},
		{"\u2067x", "U+2067"},
		{"\u2068x", "U+2068"},
		{"\u2069x", "U+2069"},
		{"AC\u200bME", "U+200B"},
		{"\u200cx", "U+200C"},
		{"\u200dx", "U+200D"},
		{"\u200ex", "U+200E"},
		{"\u200fx", "U+200F"},
		{"\u2060x", "U+2060"},
		{"\ufeffACME", "U+FEFF"},
		{"soft\u00adhyphen", "U+00AD"},
		{"AT&T; Support: 24/7 (a@b=c+d$e,f?)", ""},
	} {
		err := ValidateCallerName(tc.in)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("ValidateCallerName(%q) = %v", tc.in, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidCallerName) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ValidateCallerName(%q) = %v, want %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestParseAgentEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		number   bool
		wantErr  string
	}{
		{"PJSIP/agent1", "PJSIP/agent1", false, ""},
		{"pjsip/agent-1.b_c+d", "pjsip/agent-1.b_c+d", false, ""},
		{"+4930111000", "+4930111000", true, ""},
		{"030111000", "+4930111000", true, ""},
		{"PJSIP/agent1&PJSIP/evil", "", false, "character '&' at position 13"},
		{"PJSIP/agent1@trunk", "", false, "character '@'"},
		{"PJSIP/a,b", "", false, "character ','"},
		{"PJSIP/a/sip:x@evil", "", false, "character '/'"},
		{"PJSIP/a(b)", "", false, "character '('"},
		{"PJSIP/${EXTEN}", "", false, "character '$'"},
		{"PJSIP/a{b}", "", false, "character '{'"},
		{"PJSIP/a b", "", false, "character ' '"},
		{"PJSIP/a\tb", "", false, "character '\\t'"},
		{"PJSIP/a\x00", "", false, "character '\\x00'"},
		{"PJSIP/a\"b", "", false, "character '\"'"},
		{"PJSIP/a'b", "", false, "character '\\''"},
		{"PJSIP/a;b", "", false, "character ';'"},
		{"PJSIP/a|b", "", false, "character '|'"},
		{"PJSIP/agent\u00e9", "", false, "character 'é'"},
		{"PJSIP/", "", false, "1..80 characters"},
		{"PJSIP/" + strings.Repeat("a", 81), "", false, "1..80 characters"},
		{"Local/100@agents/n", "", false, `technology "Local" is not allowed (allowed: PJSIP)`},
		{"local/100@agents", "", false, `technology "local" is not allowed`},
		{"IAX2/peer/100", "", false, `technology "IAX2" is not allowed`},
		{"DAHDI/g1/004930123", "", false, `technology "DAHDI" is not allowed`},
		{"SIP/agent1", "", false, `technology "SIP" is not allowed`},
		{"Console/dsp", "", false, `technology "Console" is not allowed`},
		{"PJ SIP/a", "", false, "Technology/resource"},
		{"/agent1", "", false, "Technology/resource"},
		{"agent1", "", false, "Technology/resource"},
		{"", "", false, "Technology/resource"},
		{"+49 30", "", false, "invalid phone number"},
		{"1&PJSIP/x", "", false, "invalid phone number"},
	} {
		got, num, err := ParseAgentEndpoint(tc.in, "DE")
		if tc.wantErr != "" {
			if !errors.Is(err, ErrInvalidEndpoint) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseAgentEndpoint(%q) = %q, %v; want error %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want || num != tc.number {
			t.Errorf("ParseAgentEndpoint(%q) = %q, %v, %v; want %q, %v", tc.in, got, num, err, tc.want, tc.number)
		}
	}
}

// With the technologies a policy names: Local and IAX2 become possible,
// still without dial-string syntax.
func TestParseEndpointTechs(t *testing.T) {
	techs := []string{"PJSIP", "Local", "IAX2"}
	for _, tc := range []struct{ in, wantErr string }{
		{"Local/100@agents", ""},
		{"LOCAL/agent_1@queue-in", ""},
		{"IAX2/peer1", ""},
		{"PJSIP/agent1", ""},
		{"Local/100@agents/n", "character '/'"},
		{"Local/100@agents@x", "character '@'"},
		{"Local/@agents", "character '@'"},
		{"Local/100@", "character '@'"},
		{"Local/100", "exten@context"},
		{"Local/1&Local/2@x", "character '&'"},
		{"IAX2/peer/100", "character '/'"},
		{"IAX2/user:secret@host", "character ':'"},
		{"IAX2/a@host", "character '@'"},
		{"DAHDI/g1", `technology "DAHDI" is not allowed (allowed: PJSIP, Local, IAX2)`},
	} {
		_, _, err := ParseEndpoint(tc.in, "", techs)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("ParseEndpoint(%q) = %v", tc.in, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidEndpoint) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseEndpoint(%q) = %v, want %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestValidateMediaURI(t *testing.T) {
	for _, tc := range []struct {
		in             string
		literal, value bool // accepted in a flow file, from an attribute
	}{
		{"sound:hello-world", true, true},
		{"sound:vm-enter-num.gsm", true, true},
		{"sound:en/vm-enter-num", true, false},
		{"sound:digits/5", true, false},
		{"digits:1234*#", true, true},
		{"number:42", true, true},
		{"number:-3", true, true},
		{"characters:abc123", true, true},
		{"tone:ring;tonezone=de", true, true},
		{"tone:440+480/2000", true, false},
		{"recording:greeting_1", true, false},
		{"recording:../x", false, false},
		{"recording:a/../../etc/passwd", false, false},
		{"sound:../../../../etc/passwd", false, false},
		{"sound:/etc/passwd", false, false},
		{"sound:a//b", false, false},
		{"sound:a/", false, false},
		{"sound:..", false, false},
		{"sound:.", false, false},
		{"sound:a,sound:b", false, false},
		{"sound:", false, false},
		{"http://evil/x.wav", false, false},
		{"file:/etc/passwd", false, false},
		{"sound:hello world", false, false},
		{"sound:x\n", false, false},
		{"sound:x\x00", false, false},
		{"sound:x\"", false, false},
		{"sound:hélло", false, false},
		{"SOUND:x", false, false},
		{"digits:12a", false, false},
		{"number:1.5", false, false},
		{"sound:" + strings.Repeat("a", 200), false, false},
	} {
		for _, c := range []struct {
			name string
			fn   func(string) error
			ok   bool
		}{{"ValidateMediaURI", ValidateMediaURI, tc.literal}, {"ValidateMediaURIValue", ValidateMediaURIValue, tc.value}} {
			err := c.fn(tc.in)
			if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrInvalidMedia)) {
				t.Errorf("%s(%q) = %v, want ok=%v", c.name, tc.in, err, c.ok)
			}
		}
	}
}
