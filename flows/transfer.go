package flows

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ariflow/ariflow/internal/phone"
)

// Sentinel errors of the transfer validators; the controller maps any of
// them to the block's Error branch.
var (
	ErrInvalidNumber     = errors.New("invalid phone number")
	ErrInvalidDTMF       = errors.New("invalid DTMF")
	ErrInvalidTimeout    = errors.New("invalid timeout")
	ErrInvalidCallerName = errors.New("invalid caller name")
	ErrInvalidEndpoint   = errors.New("invalid endpoint")
)

// Limits of Amazon Connect's Transfer to phone number block: 50 DTMF
// characters, a ring timeout of 1 to 600 s (30 by default).
const (
	MaxDTMF            = 50
	MaxCallerName      = 80 // bytes
	TransferTimeout    = 30 // default seconds
	MaxTransferTimeout = 600
)

// NormalizeNumber returns raw as E.164 ("+4930123456"). It is strict on
// purpose: the result goes into a dial string, so only "+digits", or digits
// with a defaultRegion (e.g. "DE"), pass; no spaces or separators.
func NormalizeNumber(raw, defaultRegion string) (string, error) {
	if raw == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidNumber)
	}
	digits := raw
	if raw[0] == '+' {
		digits = raw[1:]
	}
	if digits == "" {
		return "", fmt.Errorf("%w %q: no digits", ErrInvalidNumber, raw)
	}
	for i, r := range digits {
		if r < '0' || r > '9' {
			pos := i + 1 + len(raw) - len(digits)
			return "", fmt.Errorf("%w %q: character %q at position %d is not allowed", ErrInvalidNumber, raw, r, pos)
		}
	}
	// 15 digits is the E.164 maximum; allow an international prefix (00)
	// on top for numbers written without '+'.
	if len(digits) > 17 || (raw[0] == '+' && len(digits) > 15) {
		return "", fmt.Errorf("%w %q: too long", ErrInvalidNumber, raw)
	}
	region := strings.ToUpper(defaultRegion)
	if raw[0] != '+' && region == "" {
		return "", fmt.Errorf("%w %q: needs a leading + (no default region set)", ErrInvalidNumber, raw)
	}
	n := phone.Analyse(raw, region)
	if n.Err != nil {
		return "", fmt.Errorf("%w %q: %w", ErrInvalidNumber, raw, n.Err)
	}
	return n.E164, nil
}

// ParseDTMF checks digits to send after answer: up to 50 of 0-9 * # A-D and
// the pauses ',' (750 ms, Amazon Connect), 'w' (500 ms) and 'W' (1 s,
// Asterisk and Twilio). Lowercase a-d are upper-cased. Empty means nothing
// to send.
func ParseDTMF(s string) (string, error) {
	if n := utf8.RuneCountInString(s); n > MaxDTMF {
		return "", fmt.Errorf("%w: %d characters, at most %d", ErrInvalidDTMF, n, MaxDTMF)
	}
	var b []byte
	pos := 0
	for _, r := range s {
		pos++
		switch {
		case r >= '0' && r <= '9', r == '*', r == '#', r == ',', r == 'w', r == 'W', r >= 'A' && r <= 'D':
		case r >= 'a' && r <= 'd':
			if b == nil {
				b = []byte(s)
			}
			b[pos-1] = byte(r - 'a' + 'A') // all earlier runes were ASCII
		default:
			return "", fmt.Errorf("%w: character %q at position %d is not allowed (want 0-9 * # A-D and the pauses , w W)", ErrInvalidDTMF, r, pos)
		}
	}
	if b != nil {
		return string(b), nil
	}
	return s, nil
}

// ParseTimeoutSeconds parses whole seconds; "" gives def.
func ParseTimeoutSeconds(s string, def, min, max int) (int, error) {
	if s == "" {
		return def, nil
	}
	if len(s) > 9 {
		return 0, fmt.Errorf("%w: %q is not a whole number of seconds", ErrInvalidTimeout, s)
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%w: %q is not a whole number of seconds", ErrInvalidTimeout, s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %v", ErrInvalidTimeout, s, err)
	}
	if n < min || n > max {
		return 0, fmt.Errorf("%w: %d seconds is outside %d..%d", ErrInvalidTimeout, n, min, max)
	}
	return n, nil
}

// ValidateCallerName refuses what could break out of a SIP display name or
// a channel variable, or mislead whoever reads it: quotes, backslash, angle
// brackets, control characters, format characters (Unicode Cf: bidi
// overrides and isolates U+202A–202E and U+2066–2069, zero-width characters
// U+200B–200F, U+2060, U+FEFF, soft hyphen…, which can make "ACME" render as
// something else or hide text), invalid UTF-8, and more than 80 bytes.
// Letters of any script are fine.
//
// The SIP-reserved characters Amazon Connect refuses in names (;/?:@&=+$,)
// are allowed on purpose: ariflow sends the name only as a quoted display
// name (RFC 3261 quoted-string, where they have no meaning) and never
// builds a dial string or URI from it, and real names use them ("AT&T",
// "Support 24/7"). What ends a quoted-string (" and \) is refused.
func ValidateCallerName(s string) error {
	if len(s) > MaxCallerName {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidCallerName, len(s), MaxCallerName)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidCallerName)
	}
	pos := 0
	for _, r := range s {
		pos++
		switch {
		case r == '"', r == '\'', r == '\\', r == '<', r == '>',
			unicode.IsControl(r), r == '\u2028', r == '\u2029':
			return fmt.Errorf("%w: character %q at position %d is not allowed", ErrInvalidCallerName, r, pos)
		case unicode.Is(unicode.Cf, r):
			return fmt.Errorf("%w: invisible format character %U at position %d is not allowed", ErrInvalidCallerName, r, pos)
		}
	}
	return nil
}

// DefaultEndpointTechs are the channel technologies an agent endpoint may
// use when the dial policy names none: PJSIP only. Local, IAX2, DAHDI and
// the like reach the dialplan or other networks and must be named
// deliberately.
var DefaultEndpointTechs = []string{"PJSIP"}

var techRE = regexp.MustCompile(`^[A-Za-z0-9]{1,16}$`)

// ParseAgentEndpoint is ParseEndpoint with DefaultEndpointTechs.
func ParseAgentEndpoint(raw, defaultRegion string) (endpoint string, isNumber bool, err error) {
	return ParseEndpoint(raw, defaultRegion, nil)
}

// ParseEndpoint checks a TransferToAgent endpoint. A value starting with
// '+' or a digit is a phone number (returned as E.164, isNumber true, to be
// dialled through the trunk; the dial policy still has to check it).
// Anything else must be "Technology/resource" with a technology in techs
// (compared without case, as Asterisk does; nil means
// DefaultEndpointTechs) and a resource of 1..80 of A-Z a-z 0-9 _ . + -:
// nothing the dial string gives a meaning to ('&' adds a channel, ',' an
// option, '/' and '@' a path or host, '(' ')' '$' '{' '}' functions and
// variables, spaces and quotes). The one exception is Local, when allowed:
// "Local/exten@context" with exactly one '@' and no "/n"-style options.
func ParseEndpoint(raw, defaultRegion string, techs []string) (endpoint string, isNumber bool, err error) {
	if raw != "" && (raw[0] == '+' || raw[0] >= '0' && raw[0] <= '9') {
		n, err := NormalizeNumber(raw, defaultRegion)
		if err != nil {
			return "", false, fmt.Errorf("%w: %w", ErrInvalidEndpoint, err)
		}
		return n, true, nil
	}
	if techs == nil {
		techs = DefaultEndpointTechs
	}
	tech, resource, ok := strings.Cut(raw, "/")
	if !ok || !techRE.MatchString(tech) {
		return "", false, fmt.Errorf("%w %q: want a phone number or Technology/resource like PJSIP/agent1", ErrInvalidEndpoint, raw)
	}
	allowed := false
	for _, t := range techs {
		if strings.EqualFold(t, tech) {
			allowed = true
			break
		}
	}
	if !allowed {
		return "", false, fmt.Errorf("%w %q: technology %q is not allowed (allowed: %s)", ErrInvalidEndpoint, raw, tech, strings.Join(techs, ", "))
	}
	if resource == "" || len(resource) > 80 {
		return "", false, fmt.Errorf("%w %q: resource must be 1..80 characters", ErrInvalidEndpoint, raw)
	}
	local := strings.EqualFold(tech, "Local")
	ats := 0
	for i, r := range resource {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '.', r == '+', r == '-':
		case r == '@' && local && ats == 0 && i > 0 && i < len(resource)-1:
			ats++
		default:
			return "", false, fmt.Errorf("%w %q: character %q at position %d is not allowed in the resource (A-Z a-z 0-9 _ . + -)", ErrInvalidEndpoint, raw, r, len(tech)+2+i)
		}
	}
	if local && ats != 1 {
		return "", false, fmt.Errorf("%w %q: a Local endpoint must be exten@context", ErrInvalidEndpoint, raw)
	}
	return raw, false, nil
}
