package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
	"gopkg.in/yaml.v3"
)

// example returns libphonenumber's example number of a type in a region,
// so the tests follow its metadata rather than guessed ranges.
func example(t *testing.T, region string, typ phonenumbers.PhoneNumberType) string {
	t.Helper()
	n := phonenumbers.GetExampleNumberForType(region, typ)
	if n == nil {
		t.Fatalf("no example %s number for %s", TypeName(typ), region)
	}
	return phonenumbers.Format(n, phonenumbers.E164)
}

func TestDefaultCheckNumber(t *testing.T) {
	p := Default()
	for _, tc := range []struct {
		name, number, rule string // rule "" means allowed
	}{
		{"German mobile", "+4915123456789", ""},
		{"German fixed line", "+4930123456", ""},
		{"German toll-free", "+498001234567", ""},
		{"US toll-free", "+18005550123", ""},
		{"US fixed-or-mobile", "+12025550123", ""},
		{"UK VoIP", example(t, "GB", phonenumbers.VOIP), ""},
		{"US premium rate", "+19005550123", RuleNumberType},
		{"international premium rate", "+979123456789", RuleNumberType},
		{"French premium rate", "+33899123456", RuleNumberType},
		{"German premium rate", example(t, "DE", phonenumbers.PREMIUM_RATE), RuleNumberType},
		{"Swiss shared cost", "+41840123456", RuleNumberType},
		{"UK UAN", "+445512345678", RuleNumberType},
		{"UK personal number", example(t, "GB", phonenumbers.PERSONAL_NUMBER), RuleNumberType},
		{"UK pager", example(t, "GB", phonenumbers.PAGER), RuleNumberType},
		{"voicemail access", example(t, "DE", phonenumbers.VOICEMAIL), RuleNumberType},
		{"UK drama range (invalid)", "+441632960000", RuleInvalidNumber},
		{"unclassifiable", "+8008001234", RuleInvalidNumber},
		{"not E.164", "004930123456", RuleInvalidNumber},
		{"dial-string syntax", "+4930123456&PJSIP/x", RuleInvalidNumber},
		{"empty", "", RuleInvalidNumber},
		{"too long", "+4930123456789012", RuleInvalidNumber},
	} {
		err := p.CheckNumber(tc.number)
		if tc.rule == "" {
			if err != nil {
				t.Errorf("%s: CheckNumber(%s) = %v", tc.name, tc.number, err)
			}
			continue
		}
		var d *Denied
		if !errors.As(err, &d) || d.Rule != tc.rule || !errors.Is(err, ErrDenied) {
			t.Errorf("%s: CheckNumber(%s) = %v, want rule %s", tc.name, tc.number, err, tc.rule)
		}
	}
}

func TestLoadExample(t *testing.T) {
	p, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.AllowCountries, []int{49, 43, 41}) || p.TransfersPerCall != 3 || p.Concurrent != 40 ||
		p.PerCaller != (Rate{10, time.Hour}) || p.PerEntry != (Rate{120, time.Minute}) || p.Global != (Rate{300, time.Minute}) ||
		!slices.Equal(p.EndpointTechs, []string{"PJSIP", "Local"}) || !slices.Equal(p.LocalContexts, []string{"agents"}) ||
		slices.Contains(p.AllowTypes, phonenumbers.VOIP) || !slices.Equal(p.DenyFamilies, DefaultDenyFamilies) {
		t.Errorf("loaded %+v", p)
	}
	for _, tc := range []struct{ number, rule string }{
		{"+4930123456", ""},
		{"+43800123456", ""},           // Austrian toll-free
		{"+442079460000", ""},          // London, by prefix
		{"+441134960000", RuleCountry}, // Leeds: +44 is not an allowed country
		{"+12025550123", RuleCountry},
		{"+491371234567", RuleDeniedPrefix},
		{"+979123456789", RuleCountry},
		{example(t, "DE", phonenumbers.PREMIUM_RATE), RuleNumberType},
		{example(t, "AT", phonenumbers.VOIP), RuleNumberType}, // voip denied by this file
	} {
		err := p.CheckNumber(tc.number)
		var d *Denied
		switch {
		case tc.rule == "" && err != nil:
			t.Errorf("CheckNumber(%s) = %v", tc.number, err)
		case tc.rule != "" && (!errors.As(err, &d) || d.Rule != tc.rule):
			t.Errorf("CheckNumber(%s) = %v, want rule %s", tc.number, err, tc.rule)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load("testdata/broken.yaml")
	if err == nil {
		t.Fatal("broken policy accepted")
	}
	got := err.Error()
	for _, want := range []string{
		`testdata/broken.yaml:2: allow.countries: "999" is not a country calling code`,
		`testdata/broken.yaml:2: allow.countries: "DE" is not a country calling code`,
		`testdata/broken.yaml:3: allow.prefixes: "4930" is not an E.164 prefix`,
		`testdata/broken.yaml:3: allow.prefixes: "+49 30" is not an E.164 prefix`,
		`testdata/broken.yaml:4: allow.types: unknown number type "premium" (known: fixed-line, fixed-or-mobile,`,
		`testdata/broken.yaml:6: unknown setting "deny.colour" (known: deny.families, deny.prefixes, deny.types)`,
		`testdata/broken.yaml:7: transfers_per_call: want a whole number 0..1000000 (0: no limit), got "-1"`,
		`testdata/broken.yaml:9: rate.per_caller: a count needs a window`,
		`testdata/broken.yaml:10: rate.global.window: want a duration from 1s to 168h`,
		`testdata/broken.yaml:11: concurrent: want a whole number`,
		`testdata/broken.yaml:12: endpoint_technologies: "PJ SIP" is not a channel technology`,
		`testdata/broken.yaml:13: unknown setting "nonsense"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q; got\n%s", want, got)
		}
	}
	for _, tc := range []struct{ data, want string }{
		{"allow: [1]\n", "f.yaml:1: allow: want a mapping"},
		{"- 1\n", "f.yaml:1: policy: want a mapping"},
		{"allow: {countries: 49}\n", "f.yaml:1: allow.countries: want a list"},
		{"concurrent: 1\nconcurrent: 2\n", "f.yaml:2: concurrent is set twice"},
		{"deny: {families: [satellite]}\n", `f.yaml:1: deny.families: unknown family "satellite" (known: international-network, high-risk)`},
		{"endpoint_technologies: [PJSIP, local]\n", "f.yaml:1: endpoint_technologies names Local: name the dialplan contexts"},
		{"endpoint_technologies: [Local]\nlocal_contexts: [\"a b\"]\n", `f.yaml:2: local_contexts: "a b" is not a dialplan context name`},
		{"rate: {per_entry: {count: 5}}\n", "f.yaml:1: rate.per_entry: a count needs a window"},
		{"a: [\n", "f.yaml: "},
	} {
		if _, err := Parse("f.yaml", []byte(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.data, err, tc.want)
		}
	}
	if _, err := Load("testdata/missing.yaml"); err == nil {
		t.Error("missing file accepted")
	}
	if p, err := Parse("empty.yaml", nil); err != nil || p.TransfersPerCall != DefaultTransfersPerCall {
		t.Errorf("empty file: %+v, %v; want the default", p, err)
	}
}

// A flow may narrow the operator's policy, never widen it.
func TestNarrow(t *testing.T) {
	base, err := Parse("base.yaml", []byte("allow: {countries: [49, 43]}\ntransfers_per_call: 3\nendpoint_technologies: [PJSIP, Local]\nlocal_contexts: [agents, sales]\nrate: {per_caller: {count: 5, window: 1h}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	flow, err := Parse("flow.yaml", []byte("allow: {countries: [49, 1], types: [fixed-line, mobile, premium-rate]}\ndeny: {prefixes: [\"+4930\"]}\ntransfers_per_call: 10\nendpoint_technologies: [Local, IAX2]\nlocal_contexts: [agents]\nrate: {per_caller: {count: 500, window: 1h}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := base.Narrow(flow)
	for _, tc := range []struct{ number, rule string }{
		{"+4915123456789", ""},
		{"+4940123456", ""},
		{"+4930123456", RuleDeniedPrefix},                             // the flow denies Berlin
		{"+43800123456", RuleCountry},                                 // the flow only allows 49 and 1
		{"+12025550123", RuleCountry},                                 // the base does not allow 1
		{"+498001234567", RuleNumberType},                             // the flow allows no toll-free
		{example(t, "DE", phonenumbers.PREMIUM_RATE), RuleNumberType}, // the base refuses premium
	} {
		err := p.CheckNumber(tc.number)
		var d *Denied
		switch {
		case tc.rule == "" && err != nil:
			t.Errorf("CheckNumber(%s) = %v", tc.number, err)
		case tc.rule != "" && (!errors.As(err, &d) || d.Rule != tc.rule):
			t.Errorf("CheckNumber(%s) = %v, want rule %s", tc.number, err, tc.rule)
		}
	}
	if p.TransfersPerCall != 3 || !slices.Equal(p.EndpointTechs, []string{"Local"}) || p.PerCaller.Count != 5 {
		t.Errorf("narrowed: transfers %d, techs %v, per caller %v", p.TransfersPerCall, p.EndpointTechs, p.PerCaller)
	}
	if !slices.Equal(p.LocalContexts, []string{"agents"}) {
		t.Errorf("Local contexts narrowed to %v, want [agents]", p.LocalContexts)
	}
	if q := base.Narrow(&Policy{AllowTypes: DefaultAllowTypes}); !slices.Equal(q.LocalContexts, base.LocalContexts) {
		t.Errorf("a flow naming no Local context narrowed them to %v", q.LocalContexts)
	}
	if q := base.Narrow(&Policy{AllowTypes: DefaultAllowTypes, LocalContexts: []string{"sales", "anywhere"}}); !slices.Equal(q.LocalContexts, []string{"sales"}) {
		t.Errorf("Local contexts narrowed to %v, want [sales]", q.LocalContexts)
	}
	if err := base.CheckNumber("+4930123456"); err != nil {
		t.Errorf("Narrow changed the base policy: %v", err)
	}
	none := base.Narrow(&Policy{AllowTypes: DefaultAllowTypes, EndpointTechs: []string{"DAHDI"}})
	if none.EndpointTechs == nil || len(none.EndpointTechs) != 0 {
		t.Errorf("no common technology must leave an empty, non-nil list, got %#v", none.EndpointTechs)
	}
	if all := base.Narrow(&Policy{AllowTypes: DefaultAllowTypes}); !slices.Equal(all.EndpointTechs, base.EndpointTechs) {
		t.Errorf("a flow naming no technology narrowed them to %v", all.EndpointTechs)
	}
	if base.Narrow(nil) != base {
		t.Error("Narrow(nil) is not the policy itself")
	}
}

// A flow's dial_policy section narrows only what it states, and refuses
// the operator's own settings with a message naming the line.
func TestParseFlow(t *testing.T) {
	node := func(src string) *yaml.Node {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Content[0]
	}
	base := Default()
	base.AllowTypes = append(base.AllowTypes, phonenumbers.SHARED_COST) // an operator who allows shared cost
	flow, err := ParseFlow("f.yaml", node("allow: {countries: [49]}\ntransfers_per_call: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := base.Narrow(flow)
	if err := p.CheckNumber("+4930123456"); err != nil {
		t.Errorf("a German fixed line: %v", err)
	}
	if err := p.CheckNumber(example(t, "DE", phonenumbers.SHARED_COST)); err != nil {
		t.Errorf("a flow that says nothing of types refused a type the operator allows: %v", err)
	}
	if err := p.CheckNumber("+43800123456"); !errors.Is(err, ErrDenied) {
		t.Errorf("Austria through a flow allowing only 49: %v", err)
	}
	if p.TransfersPerCall != 2 || !slices.Equal(p.EndpointTechs, base.EndpointTechs) || p.PerCaller != base.PerCaller {
		t.Errorf("narrowed: transfers %d, techs %v, per caller %v", p.TransfersPerCall, p.EndpointTechs, p.PerCaller)
	}
	for _, tc := range []struct{ src, want string }{
		{"rate: {global: {count: 1000, window: 1m}}\n", "f.yaml:1: dial_policy: rate: rate limits and the concurrency cap are set in the operator's dial policy file"},
		{"allow: {countries: [49]}\nconcurrent: 100\n", "f.yaml:2: dial_policy: concurrent: rate limits"},
		{"allow: {countries: [999]}\n", `f.yaml:1: dial_policy: allow.countries: "999" is not a country calling code`},
		{"alow: {}\n", `f.yaml:1: dial_policy: unknown setting "alow"`},
		{"[49]\n", "f.yaml:1: dial_policy: want a mapping"},
	} {
		_, err := ParseFlow("f.yaml", node(tc.src))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("ParseFlow(%q) = %v, want %q…", tc.src, err, tc.want)
		}
	}
}

func TestCheckEndpointTech(t *testing.T) {
	p := Default()
	if err := p.CheckEndpointTech("pjsip"); err != nil {
		t.Error(err)
	}
	var d *Denied
	if err := p.CheckEndpointTech("Local"); !errors.As(err, &d) || d.Rule != RuleEndpointTechology {
		t.Errorf("Local: %v", err)
	}
}
