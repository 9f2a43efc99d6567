package policy

import (
	"slices"
	"strings"
)

// Number families the default policy refuses whatever libphonenumber calls
// their numbers: libphonenumber types satellite numbers "mobile" and
// international networks "voip", so the type filter lets them through,
// yet they are where international revenue share fraud (IRSF) terminates.
// Each family is named in deny.families and has its own rule.
const (
	// FamilyInternationalNetwork: the ITU's non-geographic codes for
	// satellite and international networks, +870 (Inmarsat), +881
	// (global mobile satellite systems: Iridium, Globalstar, Thuraya…),
	// +882 and +883 (international networks). The other global codes
	// are refused by type already: +979 premium rate, +808 shared cost,
	// +888 UAN; +800 (international freephone) stays allowed.
	FamilyInternationalNetwork = "international-network"
	// FamilyHighRisk: destinations published by a regulator as targets of
	// toll fraud; see HighRiskPrefixes.
	FamilyHighRisk = "high-risk"
)

// InternationalNetworkPrefixes are FamilyInternationalNetwork's prefixes
// (ITU-T E.164 assigned country codes, "global services").
var InternationalNetworkPrefixes = []string{"+870", "+881", "+882", "+883"}

// HighRiskPrefixes are FamilyHighRisk's prefixes: the destinations of the
// "one ring" callback scam, where a missed call lures people into calling
// back a number that shares its revenue with the fraudster, as published by
// the US Federal Communications Commission (consumer guide "'One Ring'
// Phone Scam", and its May 2019 alert naming +222 Mauritania and +232
// Sierra Leone) and the Federal Trade Commission: the North American area
// codes that are international calls, 268 Antigua and Barbuda, 284 British
// Virgin Islands, 473 Grenada, 649 Turks and Caicos, 664 Montserrat, 767
// Dominica, 809/829/849 Dominican Republic and 876 Jamaica. These are the
// destinations a fraudster chooses for a callback a caller or a webhook
// asks for. An operator who serves one of them names its prefix in
// allow.prefixes (see Policy.CheckNumber).
var HighRiskPrefixes = []string{
	"+1268", "+1284", "+1473", "+1649", "+1664", "+1767", "+1809", "+1829", "+1849", "+1876",
	"+222", "+232",
}

// Families lists the family names, for messages and the policy file.
var Families = []string{FamilyInternationalNetwork, FamilyHighRisk}

// DefaultDenyFamilies are the families Default() refuses: all of them.
var DefaultDenyFamilies = []string{FamilyInternationalNetwork, FamilyHighRisk}

func familyPrefixes(family string) []string {
	switch family {
	case FamilyInternationalNetwork:
		return InternationalNetworkPrefixes
	case FamilyHighRisk:
		return HighRiskPrefixes
	}
	return nil
}

// checkFamilies refuses a number in a family p denies, unless one of p's
// allow.prefixes is at least as specific as the family's prefix the
// number matched ("+1876" opens Jamaica, "+1" does not): an operator
// opens a risky destination by naming it, never by a broad allow.
func (p *Policy) checkFamilies(e164, whose string) *Denied {
	for _, fam := range p.DenyFamilies {
		for _, pre := range familyPrefixes(fam) {
			if !strings.HasPrefix(e164, pre) {
				continue
			}
			if slices.ContainsFunc(p.AllowPrefixes, func(a string) bool {
				return strings.HasPrefix(a, pre) && strings.HasPrefix(e164, a)
			}) {
				continue
			}
			return deny(fam, "%s starts with %s, a %s destination denied by the %spolicy (open it by naming %s or longer in allow.prefixes)", e164, pre, fam, whose, pre)
		}
	}
	return nil
}
