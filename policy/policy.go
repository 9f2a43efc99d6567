// Package policy is ariflow's dial-out policy against toll fraud: which
// numbers an outbound leg may reach (countries, prefixes, number types and
// families), which endpoint technologies and Local contexts agents may
// use, how many transfers a call may make, and how many outbound legs
// callers, entry numbers and the whole cluster may start (rate limits and
// a concurrency cap, counted in Redis so every instance shares them). It is pure logic apart from the Redis counters, which sit
// behind the Limiter and Slots interfaces.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/ariflow/ariflow/internal/phone"
)

// ErrDenied is wrapped by every *Denied, for errors.Is.
var ErrDenied = errors.New("refused by the dial policy")

// Rules a number or leg is refused by: low-cardinality names, meant as a
// metric label and for $.Transfer.Status's companion attribute.
const (
	RuleInvalidNumber     = "invalid-number"           // not E.164, or libphonenumber says invalid
	RuleCountry           = "country"                  // calling code not in allow.countries (nor a prefix in allow.prefixes)
	RuleDeniedPrefix      = "denied-prefix"            // starts with a deny.prefixes entry
	RuleNumberType        = "number-type"              // premium rate, shared cost, … (see DefaultAllowTypes)
	RuleInternationalNet  = FamilyInternationalNetwork // +870, +881, +882, +883 (see families.go)
	RuleHighRisk          = FamilyHighRisk             // a published toll-fraud destination (see HighRiskPrefixes)
	RuleTransfersPerCall  = "transfers-per-call"       // the call already made transfers_per_call transfers
	RuleRatePerCaller     = "rate-per-caller"          // this caller number started too many legs in the window
	RuleRatePerEntry      = "rate-per-entry"           // calls to this entry number started too many legs in the window
	RuleRateGlobal        = "rate-global"              // all callers together started too many legs in the window
	RuleConcurrent        = "concurrent"               // too many outbound legs up at once
	RuleEndpointTechology = "endpoint-technology"
	RuleLocalContext      = "local-context" // a Local endpoint into a context local_contexts does not name
)

// Rules lists every rule name, to initialise a metric's label values.
var Rules = []string{RuleInvalidNumber, RuleCountry, RuleDeniedPrefix, RuleNumberType,
	RuleInternationalNet, RuleHighRisk, RuleTransfersPerCall, RuleRatePerCaller, RuleRatePerEntry,
	RuleRateGlobal, RuleConcurrent, RuleEndpointTechology, RuleLocalContext}

// Denied says which rule refused a number or a leg, and why in words.
type Denied struct {
	Rule   string // one of the Rule* constants
	Reason string // for logs: "+19005550123 is a premium-rate number"
}

func (d *Denied) Error() string { return fmt.Sprintf("%s: %s (rule %s)", ErrDenied, d.Reason, d.Rule) }

// Unwrap makes errors.Is(err, ErrDenied) true.
func (d *Denied) Unwrap() error { return ErrDenied }

func deny(rule, format string, a ...any) *Denied {
	return &Denied{Rule: rule, Reason: fmt.Sprintf(format, a...)}
}

// Rate is at most Count events per Window; Count 0 means no limit.
type Rate struct {
	Count  int
	Window time.Duration
}

func (r Rate) String() string {
	if r.Count == 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%d per %s", r.Count, r.Window)
}

// Policy is a validated dial-out policy. Build one with Load or Default;
// a flow narrows it with Narrow. The zero value allows nothing to be
// classified and is not meant to be used.
type Policy struct {
	// AllowCountries are country calling codes (49, 1, 979); empty means
	// every country. A number is allowed when its calling code is listed
	// or it starts with one of AllowPrefixes.
	AllowCountries []int
	// AllowPrefixes are E.164 prefixes ("+4930") allowed even outside
	// AllowCountries; one at least as long as a denied family's prefix
	// ("+1876") also opens that destination (see DenyFamilies).
	AllowPrefixes []string
	// DenyPrefixes are E.164 prefixes always refused ("+49900"); they win
	// over every allow.
	DenyPrefixes []string
	// DenyFamilies are number families (FamilyInternationalNetwork,
	// FamilyHighRisk) refused unless an AllowPrefixes entry names the
	// destination as precisely as the family does.
	DenyFamilies []string
	// AllowTypes are the libphonenumber number types that may be dialled;
	// every other type, including ones a future libphonenumber adds, is
	// refused.
	AllowTypes []phonenumbers.PhoneNumberType
	// TransfersPerCall caps outbound legs (transfers and agent numbers)
	// per call; 0 means no cap.
	TransfersPerCall int
	// PerCaller, PerEntry and Global bound how many outbound legs are
	// started, per caller number, per entry number (the number the caller
	// dialled, which selects the flow) and by everyone, across all
	// instances. The caller number is the caller's to choose (spoofed
	// caller ID); the entry numbers are the operator's, so PerEntry and
	// Global bound what any number of callers, spoofed or not, can start.
	PerCaller Rate
	PerEntry  Rate
	Global    Rate
	// Concurrent caps outbound legs up at once across all instances; 0
	// means no cap.
	Concurrent int
	// EndpointTechs are the channel technologies agent endpoints may use
	// (for flows.ParseEndpoint and flows.LoadOptions.EndpointTechs).
	EndpointTechs []string
	// LocalContexts are the dialplan contexts a Local agent endpoint
	// ("Local/exten@context") may enter; a policy that allows Local must
	// name them, or a value from an attribute could enter any context and
	// dial around the number rules.
	LocalContexts []string

	// narrower are flow-level policies whose destination rules must pass
	// too (see Narrow).
	narrower []*Policy
}

// Number type names as written in a policy file.
var typeNames = map[string]phonenumbers.PhoneNumberType{
	"fixed-line":       phonenumbers.FIXED_LINE,
	"mobile":           phonenumbers.MOBILE,
	"fixed-or-mobile":  phonenumbers.FIXED_LINE_OR_MOBILE,
	"toll-free":        phonenumbers.TOLL_FREE,
	"premium-rate":     phonenumbers.PREMIUM_RATE,
	"shared-cost":      phonenumbers.SHARED_COST,
	"voip":             phonenumbers.VOIP,
	"personal-number":  phonenumbers.PERSONAL_NUMBER,
	"pager":            phonenumbers.PAGER,
	"uan":              phonenumbers.UAN,
	"voicemail-access": phonenumbers.VOICEMAIL,
	"unknown":          phonenumbers.UNKNOWN,
}

// TypeName is the policy-file name of a libphonenumber number type.
func TypeName(t phonenumbers.PhoneNumberType) string {
	for n, v := range typeNames {
		if v == t {
			return n
		}
	}
	return "unknown"
}

// DefaultAllowTypes are the number types a default policy dials: fixed
// line, mobile, fixed-or-mobile (where a plan does not tell them apart,
// as in North America), toll-free and VoIP (geographic-rate in the plans
// that have it). Refused, because they cost the operator money or reach
// something other than a person: premium rate, shared cost, personal
// numbers (forwarded anywhere, often at premium rates), UAN, voicemail
// access, pagers, and anything libphonenumber cannot classify.
var DefaultAllowTypes = []phonenumbers.PhoneNumberType{
	phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE,
	phonenumbers.TOLL_FREE, phonenumbers.VOIP,
}

// Default limits of Default(); docs/security.md, "Limits", says why each
// is what it is.
const (
	DefaultTransfersPerCall = 5
	DefaultPerCallerCount   = 30
	DefaultPerCallerWindow  = time.Hour
	DefaultPerEntryCount    = 100
	DefaultPerEntryWindow   = time.Minute
	DefaultGlobalCount      = 200
	DefaultGlobalWindow     = time.Minute
	DefaultConcurrent       = 100
)

// Default is the policy without a policy file: every country, the number
// types of DefaultAllowTypes, none of the families of
// DefaultDenyFamilies (satellite and international networks, published
// toll-fraud destinations), at most 5 outbound legs per call, 30 per
// caller number an hour, 100 a minute per entry number, 200 a minute and
// 100 up at once in all, PJSIP endpoints only. An operator that serves one
// country should still narrow allow.countries, and one whose trunk carries
// more sets its own limits.
func Default() *Policy {
	return &Policy{
		AllowTypes:       slices.Clone(DefaultAllowTypes),
		DenyFamilies:     slices.Clone(DefaultDenyFamilies),
		TransfersPerCall: DefaultTransfersPerCall,
		PerCaller:        Rate{Count: DefaultPerCallerCount, Window: DefaultPerCallerWindow},
		PerEntry:         Rate{Count: DefaultPerEntryCount, Window: DefaultPerEntryWindow},
		Global:           Rate{Count: DefaultGlobalCount, Window: DefaultGlobalWindow},
		Concurrent:       DefaultConcurrent,
		EndpointTechs:    []string{"PJSIP"},
	}
}

// CheckNumber tells whether an E.164 number ("+4930123456") may be dialled:
// nil, or a *Denied naming the rule that refused it. Every policy a flow
// narrowed this one with must allow it too.
func (p *Policy) CheckNumber(e164 string) error {
	if !isE164(e164) {
		return deny(RuleInvalidNumber, "%q is not an E.164 number", e164)
	}
	n := phone.Analyse(e164, "")
	if n.Err != nil {
		return deny(RuleInvalidNumber, "%s is not a valid number", e164)
	}
	typ, cc := n.Type, n.CountryCode
	if d := p.checkDestination(e164, cc, typ, ""); d != nil {
		return d
	}
	for _, n := range p.narrower {
		if d := n.checkDestination(e164, cc, typ, "flow "); d != nil {
			return d
		}
	}
	return nil
}

func (p *Policy) checkDestination(e164 string, cc int, typ phonenumbers.PhoneNumberType, whose string) *Denied {
	for _, pre := range p.DenyPrefixes {
		if strings.HasPrefix(e164, pre) {
			return deny(RuleDeniedPrefix, "%s starts with %s, denied by the %spolicy", e164, pre, whose)
		}
	}
	if d := p.checkFamilies(e164, whose); d != nil {
		return d
	}
	if len(p.AllowCountries) > 0 && !slices.Contains(p.AllowCountries, cc) &&
		!slices.ContainsFunc(p.AllowPrefixes, func(pre string) bool { return strings.HasPrefix(e164, pre) }) {
		return deny(RuleCountry, "%s is in country code +%d, not allowed by the %spolicy", e164, cc, whose)
	}
	if !slices.Contains(p.AllowTypes, typ) {
		return deny(RuleNumberType, "%s is a %s number, not allowed by the %spolicy", e164, TypeName(typ), whose)
	}
	return nil
}

func isE164(s string) bool {
	if len(s) < 7 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CheckTransfers refuses a new outbound leg when a call already made
// transfersSoFar of them and the policy caps them at fewer.
func (p *Policy) CheckTransfers(transfersSoFar int) error {
	if p.TransfersPerCall > 0 && transfersSoFar >= p.TransfersPerCall {
		return deny(RuleTransfersPerCall, "the call already made %d transfers, at most %d allowed", transfersSoFar, p.TransfersPerCall)
	}
	return nil
}

// CheckEndpointTech refuses an endpoint technology the policy does not name
// (compared without case, as Asterisk does). flows.ParseEndpoint does the
// same with EndpointTechs; this is for callers that only have the tech.
func (p *Policy) CheckEndpointTech(tech string) error {
	for _, t := range p.EndpointTechs {
		if strings.EqualFold(t, tech) {
			return nil
		}
	}
	return deny(RuleEndpointTechology, "technology %q is not allowed (allowed: %s)", tech, strings.Join(p.EndpointTechs, ", "))
}

// CheckEndpoint refuses an agent endpoint ("Technology/resource", its
// syntax already checked by flows.ParseEndpoint) whose technology the
// policy does not name, and a Local endpoint whose context
// ("Local/exten@context") is not one of LocalContexts: Local runs the
// dialplan, where a context the operator did not name could dial any
// number around this policy.
func (p *Policy) CheckEndpoint(endpoint string) error {
	tech, resource, _ := strings.Cut(endpoint, "/")
	if err := p.CheckEndpointTech(tech); err != nil {
		return err
	}
	if !strings.EqualFold(tech, "Local") {
		return nil
	}
	_, context, ok := strings.Cut(resource, "@")
	if !ok || context == "" {
		return deny(RuleLocalContext, "Local endpoint %q names no context (want Local/exten@context)", endpoint)
	}
	if !slices.Contains(p.LocalContexts, context) {
		named := "none"
		if len(p.LocalContexts) > 0 {
			named = strings.Join(p.LocalContexts, ", ")
		}
		return deny(RuleLocalContext, "Local endpoint %q enters context %q, which local_contexts does not name (named: %s)", endpoint, context, named)
	}
	return nil
}

// Narrow returns the policy for a flow that brings its own, narrower one:
// a number must pass both policies' destination rules (countries,
// prefixes, types, families), the smaller transfers-per-call cap applies,
// and only endpoint technologies and Local contexts both name remain (all
// of p's when the flow names none). Rate limits and the concurrency cap are the operator's alone and
// come from p: a flow cannot raise them (ParseFlow refuses them). flow nil
// returns p.
func (p *Policy) Narrow(flow *Policy) *Policy {
	if flow == nil {
		return p
	}
	out := *p
	out.narrower = append(slices.Clone(p.narrower), flow)
	out.narrower = append(out.narrower, flow.narrower...)
	if flow.TransfersPerCall > 0 && (out.TransfersPerCall == 0 || flow.TransfersPerCall < out.TransfersPerCall) {
		out.TransfersPerCall = flow.TransfersPerCall
	}
	if flow.LocalContexts != nil {
		out.LocalContexts = []string{}
		for _, c := range p.LocalContexts {
			if slices.Contains(flow.LocalContexts, c) {
				out.LocalContexts = append(out.LocalContexts, c)
			}
		}
	}
	if flow.EndpointTechs == nil { // the flow names none: it does not narrow them
		return &out
	}
	out.EndpointTechs = []string{} // not nil: nil means "the default" to flows.ParseEndpoint
	for _, t := range p.EndpointTechs {
		if slices.ContainsFunc(flow.EndpointTechs, func(f string) bool { return strings.EqualFold(f, t) }) {
			out.EndpointTechs = append(out.EndpointTechs, t)
		}
	}
	return &out
}
