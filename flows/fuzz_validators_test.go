package flows

import (
	"strings"
	"testing"
	"unicode"
)

// dialSyntax reports a character the dial-string builder or Asterisk's
// application argument parsing gives a meaning to: '&' (another channel),
// ',' and '|' (options), '(' ')' '$' '{' '}' (functions, variables),
// '@' and '/' (host, path), quotes, whitespace and control characters.
func dialSyntax(s string) (rune, bool) {
	for _, r := range s {
		if strings.ContainsRune("&,|()${}@/\"'`;\\<>", r) || unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII {
			return r, true
		}
	}
	return 0, false
}

func FuzzParseDTMF(f *testing.F) {
	for _, s := range []string{"4711#", "1,2,,3", "abcd", "*#0", "1&2", "1 2", strings.Repeat("1", 51), "\x00", "ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseDTMF(s)
		if err != nil {
			return
		}
		if len(got) > MaxDTMF {
			t.Fatalf("ParseDTMF(%q) = %q: longer than %d", s, got, MaxDTMF)
		}
		for _, r := range got {
			if !strings.ContainsRune("0123456789*#ABCD,wW", r) {
				t.Fatalf("ParseDTMF(%q) = %q: holds %q", s, got, r)
			}
		}
	})
}

func FuzzValidateCallerName(f *testing.F) {
	for _, s := range []string{"ACME Support", "Müller & Söhne", "O'Brien", "a\r\nVia: x", "\u202eevil", "a\u200bb", "\ufeff", "\xff", `a"b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateCallerName(s) != nil {
			return
		}
		if len(s) > MaxCallerName {
			t.Fatalf("accepted %d bytes", len(s))
		}
		for _, r := range s {
			// What would end the quoted display name or hide text.
			if r == '"' || r == '\\' || r == '<' || r == '>' || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("ValidateCallerName accepted %q with %q", s, r)
			}
		}
	})
}

func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"PJSIP/agent1", "+4930111000", "030111000", "PJSIP/a&PJSIP/b", "Local/100@agents/n", "IAX2/peer", "PJSIP/${X}", "PJSIP/a b", "pjsip/x"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, raw string, withLocal bool) {
		techs := []string{"PJSIP"}
		if withLocal {
			techs = append(techs, "Local")
		}
		ep, isNumber, err := ParseEndpoint(raw, "DE", techs)
		if err != nil {
			return
		}
		if isNumber {
			if !acceptedNumber.MatchString(ep) {
				t.Fatalf("ParseEndpoint(%q) number %q", raw, ep)
			}
			return
		}
		tech, resource, _ := strings.Cut(ep, "/")
		if !strings.EqualFold(tech, "PJSIP") && !(withLocal && strings.EqualFold(tech, "Local")) {
			t.Fatalf("ParseEndpoint(%q) accepted technology %q (allowed %v)", raw, tech, techs)
		}
		if strings.EqualFold(tech, "Local") {
			resource = strings.Replace(resource, "@", "", 1) // exten@context is Local's syntax
		}
		if r, bad := dialSyntax(resource); bad {
			t.Fatalf("ParseEndpoint(%q) accepted %q with dial-string syntax %q", raw, ep, r)
		}
	})
}

func FuzzValidateMediaURI(f *testing.F) {
	for _, s := range []string{"sound:hello-world", "sound:digits/5", "recording:x", "recording:../x", "sound:/etc/passwd", "sound:a,sound:b", "tone:ring;tonezone=de", "digits:12#", "http://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		literalErr := ValidateMediaURI(s)
		valueErr := ValidateMediaURIValue(s)
		if valueErr == nil && literalErr != nil {
			t.Fatalf("%q accepted from an attribute but not in a flow file: %v", s, literalErr)
		}
		if literalErr != nil {
			return
		}
		scheme, rest, _ := strings.Cut(s, ":")
		if !strings.Contains("sound recording number digits characters tone", scheme) || scheme == "" {
			t.Fatalf("accepted scheme %q", scheme)
		}
		// ',' would smuggle a second URI into ARI's media list.
		if strings.ContainsAny(rest, ",\"'` \\") || strings.Contains(rest, "..") || strings.HasPrefix(rest, "/") {
			t.Fatalf("ValidateMediaURI accepted %q", s)
		}
		for _, r := range rest {
			if unicode.IsControl(r) || r > unicode.MaxASCII {
				t.Fatalf("ValidateMediaURI accepted %q with %q", s, r)
			}
		}
		if valueErr == nil && (strings.Contains(rest, "/") || scheme == "recording") {
			t.Fatalf("ValidateMediaURIValue accepted %q", s)
		}
	})
}

// FuzzNormalizeNumberSyntax: an accepted number never carries dial-string
// syntax into the template (FuzzNormalizeNumber checks the E.164 shape).
func FuzzNormalizeNumberSyntax(f *testing.F) {
	for _, s := range []string{"+4930123456", "030123456", "123&PJSIP/999", "+49 30", "1@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := NormalizeNumber(raw, "DE")
		if err != nil {
			return
		}
		if r, bad := dialSyntax(got); bad {
			t.Fatalf("NormalizeNumber(%q) = %q with %q", raw, got, r)
		}
	})
}
