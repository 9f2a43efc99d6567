package flows

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
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

var e164RE = regexp.MustCompile(`^\+[0-9]{6,15}$`)

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
	num, err := phonenumbers.Parse(raw, region)
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrInvalidNumber, raw, err)
	}
	if !phonenumbers.IsValidNumber(num) {
		return "", fmt.Errorf("%w %q: not a valid number", ErrInvalidNumber, raw)
	}
	out := phonenumbers.Format(num, phonenumbers.E164)
	if !e164RE.MatchString(out) {
		return "", fmt.Errorf("%w %q: not a valid E.164 number", ErrInvalidNumber, raw)
	}
	return out, nil
}

// ParseDTMF checks digits to send after answer: up to 50 of 0-9 * # A-D and
// ',' (pause). Lowercase a-d are upper-cased. Empty means nothing to send.
func ParseDTMF(s string) (string, error) {
	if n := utf8.RuneCountInString(s); n > MaxDTMF {
		return "", fmt.Errorf("%w: %d characters, at most %d", ErrInvalidDTMF, n, MaxDTMF)
	}
	var b []byte
	pos := 0
	for _, r := range s {
		pos++
		switch {
		case r >= '0' && r <= '9', r == '*', r == '#', r == ',', r >= 'A' && r <= 'D':
		case r >= 'a' && r <= 'd':
			if b == nil {
				b = []byte(s)
			}
			b[pos-1] = byte(r - 'a' + 'A') // all earlier runes were ASCII
		default:
			return "", fmt.Errorf("%w: character %q at position %d is not allowed (want 0-9 * # A-D ,)", ErrInvalidDTMF, r, pos)
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
// a channel variable: quotes, backslash, angle brackets, control characters,
// invalid UTF-8, and more than 80 bytes. Letters of any script are fine.
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
		}
	}
	return nil
}

var endpointRE = regexp.MustCompile(`^[A-Za-z0-9]{1,16}/[A-Za-z0-9_.+-]{1,80}$`)

// ParseAgentEndpoint checks a TransferToAgent endpoint. A value starting
// with '+' or a digit is a phone number (returned as E.164, isNumber true,
// to be dialled through the trunk); anything else must look like
// "PJSIP/agent1" (technology/resource, no '@', '&' or ',').
func ParseAgentEndpoint(raw, defaultRegion string) (endpoint string, isNumber bool, err error) {
	if raw != "" && (raw[0] == '+' || raw[0] >= '0' && raw[0] <= '9') {
		n, err := NormalizeNumber(raw, defaultRegion)
		if err != nil {
			return "", false, fmt.Errorf("%w: %w", ErrInvalidEndpoint, err)
		}
		return n, true, nil
	}
	if !endpointRE.MatchString(raw) {
		return "", false, fmt.Errorf("%w %q: want a phone number or Technology/resource like PJSIP/agent1", ErrInvalidEndpoint, raw)
	}
	return raw, false, nil
}
