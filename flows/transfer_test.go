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
		{"w", "", `character 'w' at position 1`},
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
		{"+4930111000", "+4930111000", true, ""},
		{"030111000", "+4930111000", true, ""},
		{"PJSIP/agent1&PJSIP/evil", "", false, "Technology/resource"},
		{"PJSIP/agent1@trunk", "", false, "Technology/resource"},
		{"PJSIP/a,b", "", false, "Technology/resource"},
		{"Local/100@agents/n", "", false, "Technology/resource"},
		{"agent1", "", false, "Technology/resource"},
		{"", "", false, "Technology/resource"},
		{"+49 30", "", false, "invalid phone number"},
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

func TestValidateMediaURI(t *testing.T) {
	for in, ok := range map[string]bool{
		"sound:hello-world":     true,
		"sound:en/vm-enter-num": true,
		"digits:1234":           true,
		"tone:ring;tonezone=de": true,
		"recording:greeting_1":  true,
		"sound:a,sound:b":       false,
		"sound:":                false,
		"http://evil/x.wav":     false,
		"sound:hello world":     false,
		"sound:x\n":             false,
		"SOUND:x":               false,
	} {
		err := ValidateMediaURI(in)
		if (err == nil) != ok || (err != nil && !errors.Is(err, ErrInvalidMedia)) {
			t.Errorf("ValidateMediaURI(%q) = %v, want ok=%v", in, err, ok)
		}
	}
}
