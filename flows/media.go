package flows

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidMedia is wrapped by ValidateMediaURI and ValidateMediaURIValue.
var ErrInvalidMedia = errors.New("invalid media URI")

// MaxMediaURI bounds a media URI's length.
const MaxMediaURI = 200

// ValidateMediaURI checks a prompt written in a flow file, such as
// "sound:hello-world" or "sound:digits/5". Schemes: sound, recording,
// number, digits, characters, tone. A sound or recording name may use
// sub-directories ('/' between non-empty names) but never "..", a leading
// '/' (an absolute path) or an empty segment. Nothing may hold ',' (ARI
// splits its media parameter on it, so a comma would smuggle in a second
// URI), spaces, quotes or control characters.
func ValidateMediaURI(s string) error {
	if IsTextPrompt(s) { // text-to-speech, see text.go
		return ValidateTextPrompt(s)
	}
	return validateMedia(s, true)
}

// ValidateMediaURIValue checks a prompt whose URI comes from an attribute
// (a caller's digits or a webhook's answer) before it reaches ARI: the
// rules of ValidateMediaURI, and also no '/' at all (only sounds of the
// top sound directory) and no recording: (a recording name from outside
// could play any stored recording, such as another caller's voicemail).
func ValidateMediaURIValue(s string) error { return validateMedia(s, false) }

func validateMedia(s string, literal bool) error {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" || len(s) > MaxMediaURI {
		return fmt.Errorf("%w %q: want sound:, recording:, number:, digits:, characters: or tone: and at most %d characters", ErrInvalidMedia, s, MaxMediaURI)
	}
	if strings.Contains(rest, "..") || strings.HasPrefix(rest, "/") {
		// Never needed, and ".." as a path segment climbs out of the
		// sounds directory, a leading '/' names a file anywhere: refused
		// whatever the scheme, not only as a sound's path segment.
		return fmt.Errorf("%w %q: \"..\" and a leading '/' are not allowed", ErrInvalidMedia, s)
	}
	var allowed func(r rune) bool
	switch scheme {
	case "sound", "recording":
		if scheme == "recording" && !literal {
			return fmt.Errorf("%w %q: recording: is only allowed in the flow file, not from an attribute", ErrInvalidMedia, s)
		}
		allowed = func(r rune) bool { return isAlnum(r) || r == '_' || r == '-' || r == '.' || r == '/' && literal }
		for _, seg := range strings.Split(rest, "/") {
			if seg == "" || seg == ".." || seg == "." {
				return fmt.Errorf("%w %q: empty, \".\" or \"..\" path segment", ErrInvalidMedia, s)
			}
		}
	case "number":
		allowed = func(r rune) bool { return r >= '0' && r <= '9' || r == '-' }
	case "digits":
		allowed = func(r rune) bool { return r >= '0' && r <= '9' || r == '*' || r == '#' }
	case "characters":
		allowed = func(r rune) bool {
			return isAlnum(r) || r == '*' || r == '#' || r == '-' || r == '_' || r == '.' || r == '@' || r == '+' || r == '='
		}
	case "tone":
		// tone:ring;tonezone=de, or a tone list like tone:440+480/2000
		allowed = func(r rune) bool {
			return isAlnum(r) || r == ';' || r == '=' || r == '_' || r == '-' || r == '+' || r == '*' || r == '#' || r == '!' || r == '/' && literal
		}
	default:
		return fmt.Errorf("%w %q: scheme %q is not one of sound, recording, number, digits, characters, tone", ErrInvalidMedia, s, scheme)
	}
	for i, r := range rest {
		if !allowed(r) {
			return fmt.Errorf("%w %q: character %q at position %d is not allowed after %s:", ErrInvalidMedia, s, r, len(scheme)+2+i, scheme)
		}
	}
	return nil
}

func isAlnum(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
}
