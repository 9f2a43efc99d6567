package policy

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// nonGeo is libphonenumber's example number for a global service code.
func nonGeo(t *testing.T, cc int) string {
	t.Helper()
	n := phonenumbers.GetExampleNumberForNonGeoEntity(cc)
	if n == nil {
		t.Fatalf("no example number for +%d", cc)
	}
	return phonenumbers.Format(n, phonenumbers.E164)
}

// TestDefaultNumberFamilies is docs/security.md's number family table:
// each family, a number of it (libphonenumber's own example where it has
// one), and what the default policy does to it. Satellite and
// international-network numbers are what libphonenumber calls mobile or
// VoIP; they are refused by family, not by type.
func TestDefaultNumberFamilies(t *testing.T) {
	p := Default()
	rows := []struct {
		family, number, rule string // rule "" means dialled
	}{
		{"fixed line (Germany)", example(t, "DE", phonenumbers.FIXED_LINE), ""},
		{"mobile (Germany)", example(t, "DE", phonenumbers.MOBILE), ""},
		{"fixed or mobile (United States)", "+12025550123", ""},
		{"toll-free (Germany)", example(t, "DE", phonenumbers.TOLL_FREE), ""},
		{"toll-free (United States)", "+18005550123", ""},
		{"international freephone +800", nonGeo(t, 800), ""},
		{"VoIP (United Kingdom)", example(t, "GB", phonenumbers.VOIP), ""},
		{"premium rate (Germany)", example(t, "DE", phonenumbers.PREMIUM_RATE), RuleNumberType},
		{"premium rate (United States, 900)", "+19005550123", RuleNumberType},
		{"international premium rate +979", nonGeo(t, 979), RuleNumberType},
		{"shared cost (Switzerland)", "+41840123456", RuleNumberType},
		{"international shared cost +808", nonGeo(t, 808), RuleNumberType},
		{"personal number (United Kingdom)", example(t, "GB", phonenumbers.PERSONAL_NUMBER), RuleNumberType},
		{"UAN (United Kingdom)", "+445512345678", RuleNumberType},
		{"+888 (OCHA)", nonGeo(t, 888), RuleNumberType},
		{"satellite +881 (Iridium)", "+881612345678", RuleInternationalNet},
		{"satellite +881 (libphonenumber's example)", nonGeo(t, 881), RuleInternationalNet},
		{"Inmarsat +870", nonGeo(t, 870), RuleInternationalNet},
		{"international networks +882", nonGeo(t, 882), RuleInternationalNet},
		{"international networks +883", nonGeo(t, 883), RuleInternationalNet},
		{"high-risk: Antigua and Barbuda +1 268", example(t, "AG", phonenumbers.MOBILE), RuleHighRisk},
		{"high-risk: British Virgin Islands +1 284", example(t, "VG", phonenumbers.MOBILE), RuleHighRisk},
		{"high-risk: Grenada +1 473", example(t, "GD", phonenumbers.MOBILE), RuleHighRisk},
		{"high-risk: Turks and Caicos +1 649", example(t, "TC", phonenumbers.MOBILE), RuleHighRisk},
		{"high-risk: Montserrat +1 664", example(t, "MS", phonenumbers.MOBILE), RuleHighRisk},
		{"high-risk: Dominica +1 767", example(t, "DM", phonenumbers.MOBILE), RuleHighRisk},
		{"high-risk: Dominican Republic +1 809", "+18095550123", RuleHighRisk},
		{"high-risk: Dominican Republic +1 829", "+18292345678", RuleHighRisk},
		{"high-risk: Dominican Republic +1 849", "+18492345678", RuleHighRisk},
		{"high-risk: Jamaica +1 876", example(t, "JM", phonenumbers.MOBILE), RuleHighRisk},
		{"high-risk: Mauritania +222", example(t, "MR", phonenumbers.MOBILE), RuleHighRisk},
		{"high-risk: Sierra Leone +232", example(t, "SL", phonenumbers.MOBILE), RuleHighRisk},
		{"not E.164 or invalid", "+441632960000", RuleInvalidNumber},
	}
	for _, r := range rows {
		err := p.CheckNumber(r.number)
		if r.rule == "" {
			if err != nil {
				t.Errorf("%s: %s refused: %v", r.family, r.number, err)
			}
			continue
		}
		var d *Denied
		if !errors.As(err, &d) || d.Rule != r.rule {
			t.Errorf("%s: CheckNumber(%s) = %v, want rule %s", r.family, r.number, err, r.rule)
		}
	}
	// Every prefix of the published list is in the table.
	seen := map[string]bool{}
	for _, r := range rows {
		for _, pre := range append(HighRiskPrefixes, InternationalNetworkPrefixes...) {
			if len(r.number) >= len(pre) && r.number[:len(pre)] == pre {
				seen[pre] = true
			}
		}
	}
	for _, pre := range append(HighRiskPrefixes, InternationalNetworkPrefixes...) {
		if !seen[pre] {
			t.Errorf("no row for %s", pre)
		}
	}
}

func isRule(err error, rule string) bool {
	var d *Denied
	return errors.As(err, &d) && d.Rule == rule
}

// An operator opens a risky destination by naming it at least as precisely
// as the family does; a broad allow opens nothing, and deny.families: []
// turns the family rules off.
func TestFamiliesOpenedByName(t *testing.T) {
	jamaica, iridium := example(t, "JM", phonenumbers.MOBILE), "+881612345678"
	for _, tc := range []struct {
		file            string
		jamaica, iridum string // the rule, "" when dialled
	}{
		{"", RuleHighRisk, RuleInternationalNet},
		{`allow: {prefixes: ["+1876"]}`, "", RuleInternationalNet},
		{`allow: {prefixes: ["+1876", "+8816"]}`, "", ""},
		{`allow: {prefixes: ["+1"]}`, RuleHighRisk, RuleInternationalNet},
		{`allow: {prefixes: ["+88"]}`, RuleHighRisk, RuleInternationalNet},
		{`deny: {families: [high-risk]}`, RuleHighRisk, ""},
		{`deny: {families: []}`, "", ""},
		{`allow: {prefixes: ["+1876"]}` + "\n" + `deny: {prefixes: ["+1876"]}`, RuleDeniedPrefix, RuleInternationalNet},
	} {
		p, err := Parse("p.yaml", []byte(tc.file))
		if err != nil {
			t.Fatalf("%q: %v", tc.file, err)
		}
		for _, c := range []struct{ number, rule string }{{jamaica, tc.jamaica}, {iridium, tc.iridum}} {
			err := p.CheckNumber(c.number)
			if (c.rule == "" && err != nil) || (c.rule != "" && !isRule(err, c.rule)) {
				t.Errorf("policy %q: CheckNumber(%s) = %v, want rule %q", tc.file, c.number, err, c.rule)
			}
		}
	}
	// A flow's dial_policy may add a family, not remove the operator's.
	base := Default()
	open, err := Parse("flow.yaml", []byte(`deny: {families: []}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := base.Narrow(open).CheckNumber(jamaica); !isRule(err, RuleHighRisk) {
		t.Errorf("a flow removed the operator's high-risk family: %v", err)
	}
}

// Local endpoints go only into the contexts the policy names.
func TestCheckEndpointLocalContexts(t *testing.T) {
	p, err := Parse("p.yaml", []byte("endpoint_technologies: [PJSIP, Local]\nlocal_contexts: [agents]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ep, rule string }{
		{"PJSIP/agent1", ""},
		{"Local/100@agents", ""},
		{"local/100@agents", ""},
		{"Local/+19005550123@from-internal", RuleLocalContext},
		{"Local/100@Agents", RuleLocalContext}, // compared exactly: stricter than Asterisk, never wider
		{"Local/100", RuleLocalContext},
		{"IAX2/provider", RuleEndpointTechology},
	} {
		err := p.CheckEndpoint(tc.ep)
		if (tc.rule == "" && err != nil) || (tc.rule != "" && !isRule(err, tc.rule)) {
			t.Errorf("CheckEndpoint(%s) = %v, want rule %q", tc.ep, err, tc.rule)
		}
	}
	if err := Default().CheckEndpoint("Local/100@agents"); !isRule(err, RuleEndpointTechology) {
		t.Errorf("default policy: %v", err)
	}
}

// A caller who presents a new number on every call (spoofed caller ID)
// gets a fresh per-caller budget each time; the per-entry and global
// rates, keyed on what the operator owns, still bound what all of them
// start together, and another entry keeps its own budget.
func TestGateSpoofedCallersBoundedPerEntry(t *testing.T) {
	both(t, func(t *testing.T, c counters) {
		p := Default()
		p.PerCaller = Rate{1, time.Hour}
		p.PerEntry = Rate{5, time.Minute}
		p.Global = Rate{8, time.Minute}
		p.Concurrent = 0
		g := NewGate(p, c.limiter, c.slots)
		ctx := context.Background()
		admitted := 0
		var last error
		for i := 0; i < 50; i++ {
			rel, err := g.Acquire(ctx, Leg{Caller: fmt.Sprintf("+49176%08d", i), Entry: "+4930555000", Number: mobile})
			if err != nil {
				last = err
				continue
			}
			rel()
			admitted++
		}
		if admitted != 5 || !isRule(last, RuleRatePerEntry) {
			t.Fatalf("50 spoofed callers on one entry: %d admitted, last refusal %v; want 5 and %s", admitted, last, RuleRatePerEntry)
		}
		// Another entry has its own budget, within the global one.
		for i := 0; i < 3; i++ {
			if _, err := g.Acquire(ctx, Leg{Caller: fmt.Sprintf("+49177%08d", i), Entry: "+4930555111", Number: mobile}); err != nil {
				t.Fatalf("second entry, leg %d: %v", i, err)
			}
		}
		_, err := g.Acquire(ctx, Leg{Caller: "+4917899999999", Entry: "+4930555222", Number: mobile})
		wantRule(t, err, RuleRateGlobal)
	})
}

// The default's limits are the documented ones (docs/security.md,
// "Limits"): every one of them binds.
func TestDefaultLimits(t *testing.T) {
	p := Default()
	if p.TransfersPerCall != 5 || p.PerCaller != (Rate{30, time.Hour}) || p.PerEntry != (Rate{100, time.Minute}) ||
		p.Global != (Rate{200, time.Minute}) || p.Concurrent != 100 {
		t.Errorf("default limits: %d per call, %v per caller, %v per entry, %v global, %d concurrent",
			p.TransfersPerCall, p.PerCaller, p.PerEntry, p.Global, p.Concurrent)
	}
}
