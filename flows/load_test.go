package flows

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// brokenCases maps each fixture in testdata/broken to the one error it must
// produce ("file:line: message", file relative to testdata/broken).
var brokenCases = []struct{ file, want string }{
	{"agent_bad_endpoint", "agent_bad_endpoint.yaml:8: block \"a\": endpoint: invalid endpoint \"PJSIP/agent1&PJSIP/evil\": character '&' at position 13 is not allowed in the resource (A-Z a-z 0-9 _ . + -)"},
	{"agent_both", "agent_both.yaml:6: block \"a\": set either endpoint or context and extension, not both"},
	{"agent_missing_endpoint", "agent_missing_endpoint.yaml:6: block \"a\": missing required setting \"endpoint\" (or \"context\" and \"extension\")"},
	{"alias", "alias.yaml:6: YAML anchors and aliases are not supported"},
	{"bad_name", "bad_name.yaml:1: name \"Bad Name\": may only hold a-z 0-9 _ -"},
	{"bad_url", "bad_url.yaml:8: block \"a\": url: \"ftp://example.com/x\" must be an absolute http or https URL"},
	{"branch_not_allowed", "branch_not_allowed.yaml:9: block \"a\": branch \"Success\" is not allowed for PlayPrompt (allowed: Next, Error)"},
	{"branch_target_missing", "branch_target_missing.yaml:9: block \"a\": branch Next: target block \"nowhere\" does not exist"},
	{"caller_name_newline", "caller_name_newline.yaml:9: block \"a\": caller_id_name: invalid caller name: character '\\n' at position 5 is not allowed"},
	{"caller_name_quote", "caller_name_quote.yaml:9: block \"a\": caller_id_name: invalid caller name: character '\"' at position 6 is not allowed"},
	{"caller_number_bad", "caller_number_bad.yaml:9: block \"a\": caller_id_number: invalid phone number \"+4930555000@evil\": character '@' at position 12 is not allowed"},
	{"dial_policy_rate", "dial_policy_rate.yaml:7: dial_policy: rate: rate limits and the concurrency cap are set in the operator's dial policy file; a flow can only narrow allow, deny, transfers_per_call and endpoint_technologies"},
	{"disconnect_branches", "disconnect_branches.yaml:8: block \"a\": branch \"Next\" is not allowed: Disconnect has no branches"},
	{"dtmf_bad_char", "dtmf_bad_char.yaml:9: block \"a\": dtmf: invalid DTMF: character 'x' at position 5 is not allowed (want 0-9 * # A-D and the pauses , w W)"},
	{"dtmf_too_long", "dtmf_too_long.yaml:9: block \"a\": dtmf: invalid DTMF: 51 characters, at most 50"},
	{"duplicate_key", "duplicate_key.yaml:9: block \"a\": duplicate key \"prompts\""},
	{"empty_entry", "empty_entry.yaml:3: entry: must list at least one called number or Stasis argument"},
	{"input_terminator", "input_terminator.yaml:8: block \"a\": terminator: want one of 0-9 * #, got \"x\""},
	{"input_value_branch", "input_value_branch.yaml:6: block \"a\": missing required branch \"2\""},
	{"loop", "loop.yaml:6: blocks \"a\", \"b\" form a loop that never waits for the caller (only SetAttributes, CheckAttribute, InvokeWebhook, SetWorkingQueue, TransferToFlow, Loop)"},
	{"max_digits_list", "max_digits_list.yaml:8: block \"a\": max_digits: want a whole number, got a list"},
	{"max_digits_range", "max_digits_range.yaml:8: block \"a\": max_digits: 65 is out of range 1..64"},
	{"missing_attribute", "missing_attribute.yaml:6: block \"a\": missing required setting \"attribute\""},
	{"missing_blocks", "missing_blocks.yaml:1: missing blocks"},
	{"missing_branch", "missing_branch.yaml:6: block \"a\": missing required branch \"Timeout\""},
	{"missing_conditions", "missing_conditions.yaml:6: block \"a\": missing required setting \"conditions\""},
	{"missing_entry", "missing_entry.yaml:1: missing entry"},
	{"missing_name", "missing_name.yaml:1: missing name"},
	{"missing_number", "missing_number.yaml:6: block \"a\": missing required setting \"number\""},
	{"missing_prompts", "missing_prompts.yaml:6: block \"a\": missing required setting \"prompts\""},
	{"missing_start", "missing_start.yaml:1: missing start"},
	{"missing_type", "missing_type.yaml:6: block \"a\": missing type"},
	{"missing_url", "missing_url.yaml:6: block \"a\": missing required setting \"url\""},
	{"missing_version", "missing_version.yaml:1: missing version"},
	{"not_a_mapping", "not_a_mapping.yaml:1: want a mapping with keys name, version, entry, start, blocks, got a list"},
	{"number_injection", "number_injection.yaml:8: block \"a\": number: invalid phone number \"123&PJSIP/999\": character '&' at position 4 is not allowed"},
	{"number_invalid", "number_invalid.yaml:8: block \"a\": number: invalid phone number \"+4912\": not a valid number"},
	{"number_no_plus", "number_no_plus.yaml:8: block \"a\": number: invalid phone number \"030123456\": needs a leading + (no default region set)"},
	{"number_spaces", "number_spaces.yaml:8: block \"a\": number: invalid phone number \"+49 30 123\": character ' ' at position 4 is not allowed"},
	{"numeric_op_text", "numeric_op_text.yaml:10: block \"a\": condition 1: value: GreaterThan needs a number, got \"abc\""},
	{"prompt_media", "prompt_media.yaml:8: block \"a\": prompts: invalid media URI \"sound:a,sound:b\": character ',' at position 8 is not allowed after sound:"},
	{"ref_empty_key", "ref_empty_key.yaml:8: block \"a\": number: bad attribute reference \"$.Attributes.\": empty key"},
	{"ref_namespace", "ref_namespace.yaml:8: block \"a\": number: bad attribute reference \"$.Contact.shipper\": unknown namespace \"Contact\" (want Attributes, External, System, Transfer or Queue)"},
	{"resume_not_bool", "resume_not_bool.yaml:9: block \"a\": resume: want true or false, got \"maybe\""},
	{"self_loop", "self_loop.yaml:6: block \"a\" loops to itself without waiting for the caller (only SetAttributes, CheckAttribute, InvokeWebhook, SetWorkingQueue, TransferToFlow, Loop)"},
	{"set_bad_key", "set_bad_key.yaml:8: block \"a\": set: \"bad key\" is not a valid attribute key (A-Z a-z 0-9 _ . -)"},
	{"start_missing", "start_missing.yaml:4: start block \"nope\" does not exist"},
	{"success_without_resume", "success_without_resume.yaml:10: block \"a\": branch \"Success\" is not allowed for TransferToPhoneNumber with resume: false (allowed: CallFailed, Timeout, Error)"},
	{"timeout_not_number", "timeout_not_number.yaml:8: block \"a\": timeout: want a whole number, got \"abc\""},
	{"transfer_timeout_range", "transfer_timeout_range.yaml:9: block \"a\": timeout: invalid timeout: 601 seconds is outside 1..600"},
	{"transfer_timeout_text", "transfer_timeout_text.yaml:9: block \"a\": timeout: invalid timeout: \"30.5\" is not a whole number of seconds"},
	{"unknown_op", "unknown_op.yaml:10: block \"a\": condition 1: unknown op \"Like\" (want one of Equals, NotEquals, Contains, LessThan, LessThanOrEqual, GreaterThan, GreaterThanOrEqual, IsSet)"},
	{"unknown_setting", "unknown_setting.yaml:9: block \"a\": unknown setting \"volume\" for PlayPrompt"},
	{"unknown_top_key", "unknown_top_key.yaml:5: unknown top-level key \"description\" (want name, version, entry, start, blocks, dial_policy)"},
	{"unknown_type", "unknown_type.yaml:6: block \"a\": unknown type \"PlayMusic\" (want one of PlayPrompt, GetCustomerInput, SetAttributes, CheckAttribute, InvokeWebhook, Loop, TransferToPhoneNumber, TransferToAgent, SetWorkingQueue, TransferToQueue, TransferToFlow, Disconnect)"},
	{"unreachable", "unreachable.yaml:10: block \"orphan\" is not reachable from start block \"a\""},
	{"webhook_timeout_range", "webhook_timeout_range.yaml:9: block \"a\": timeout: 31 is out of range 1..30"},
	{"yaml_syntax", "yaml_syntax.yaml:7: YAML syntax: did not find expected ',' or '}'"},
}

func TestLoadBroken(t *testing.T) {
	files, err := filepath.Glob("testdata/broken/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(brokenCases) {
		t.Errorf("%d fixtures but %d cases; keep them in step", len(files), len(brokenCases))
	}
	for _, tc := range brokenCases {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", "broken", tc.file+".yaml")
			set, err := LoadFiles(LoadOptions{}, path)
			if err == nil {
				t.Fatalf("loaded %d flows, want error %q", len(set.Flows), tc.want)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList", err)
			}
			want := "testdata/broken/" + tc.want
			if !strings.Contains(err.Error(), want) {
				t.Errorf("got\n%v\nwant\n%s", err, want)
			}
			if len(list) != 1 {
				t.Errorf("got %d errors, want exactly one:\n%v", len(list), err)
			}
		})
	}
}

func TestLoadBrokenDirCollectsAll(t *testing.T) {
	_, err := LoadDir(LoadOptions{}, "testdata/broken")
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("got %v, want an ErrorList", err)
	}
	if len(list) != len(brokenCases) {
		t.Errorf("got %d errors for %d fixtures", len(list), len(brokenCases))
	}
	for i := 1; i < len(list); i++ {
		if list[i-1].File > list[i].File {
			t.Fatalf("errors not sorted by file: %s before %s", list[i-1].File, list[i].File)
		}
	}
}

func TestLoadDuplicatesAcrossFiles(t *testing.T) {
	_, err := LoadDir(LoadOptions{}, "testdata/dup")
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{
		`testdata/dup/b.yaml:1: duplicate flow name "same", also in testdata/dup/a.yaml`,
		`testdata/dup/b.yaml:3: entry "+4930555000" of flow "same" is already used by flow "same" in testdata/dup/a.yaml:3`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got\n%v\nwant %s", err, want)
		}
	}
}

func TestLoadExamples(t *testing.T) {
	set, err := LoadDir(LoadOptions{}, "examples")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Flows) != 2 {
		t.Fatalf("got %d flows, want 2", len(set.Flows))
	}
	for entry, name := range map[string]string{
		"+4930555000": "shipping", "shipping": "shipping",
		"+4930555001": "hello", "hello": "hello",
	} {
		f, ok := set.ForEntry(entry)
		if !ok || f.Name != name {
			t.Errorf("ForEntry(%q) = %v, %v; want %s", entry, f, ok, name)
		}
	}
	if _, ok := set.ForEntry("4930555000"); ok {
		t.Error("ForEntry matches inexactly")
	}
	f, ok := set.Flow("shipping")
	if !ok {
		t.Fatal("no shipping flow")
	}
	if f.Start != "greet" || f.Version != "1" || f.File != filepath.Join("examples", "shipping.yaml") {
		t.Errorf("flow header %q %q %q", f.Start, f.Version, f.File)
	}
	tr := f.Blocks["to_shipper"].Transfer
	if tr == nil {
		t.Fatal("to_shipper has no transfer settings")
	}
	if tr.Number.Ref == nil || *tr.Number.Ref != (Ref{NSAttributes, "shipper"}) ||
		tr.DTMF.Ref == nil || tr.DTMF.Ref.Key != "tracking" ||
		tr.Timeout.Literal != "30" || !tr.Resume ||
		tr.CallerIDNumber.Literal != "+4930555000" || tr.CallerIDName.Literal != "ACME Support" {
		t.Errorf("transfer settings %+v", tr)
	}
	in := f.Blocks["ask_tracking"].Input
	if in.MaxDigits != 20 || in.Terminator != "#" || in.Timeout != 10*time.Second || in.StoreAs != "tracking" {
		t.Errorf("input settings %+v", in)
	}
	set2 := f.Blocks["setup"].Set.Set
	if len(set2) != 2 || set2[0].Key != "shipper" || set2[1].Key != "agent" || set2[0].Value.Literal != "+4930123456" {
		t.Errorf("set order/values %+v", set2)
	}
	if ag := f.Blocks["agent"].Agent; ag.Endpoint.Ref == nil || ag.Endpoint.Ref.Key != "agent" {
		t.Errorf("agent %+v", ag)
	}
	if f.Blocks["greet"].Line != 9 {
		t.Errorf("greet line %d, want 9", f.Blocks["greet"].Line)
	}
}

const validFlow = `name: t
version: 2
entry: ["t"]
start: a
blocks:
  a:
    type: TransferToPhoneNumber
    number: 030123456
    timeout: "45"
    resume: false
    dtmf: "12ab,#"
    branches: {CallFailed: b, Timeout: b}
  b:
    type: TransferToAgent
    context: agents
    extension: "100"
  c:
    type: Disconnect
`

func TestParseRegionAndNormalising(t *testing.T) {
	src := strings.Replace(validFlow, "  c:\n    type: Disconnect\n", "", 1)
	if _, err := Parse("t.yaml", []byte(src), LoadOptions{}); err == nil ||
		!strings.Contains(err.Error(), `t.yaml:8: block "a": number: invalid phone number "030123456": needs a leading +`) {
		t.Fatalf("without region: %v", err)
	}
	f, err := Parse("t.yaml", []byte(src), LoadOptions{DefaultRegion: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	tr := f.Blocks["a"].Transfer
	if tr.Number.Literal != "+4930123456" || tr.DTMF.Literal != "12AB,#" || tr.Timeout.Literal != "45" || tr.Resume {
		t.Errorf("got %+v", tr)
	}
	if f.Version != "2" {
		t.Errorf("version %q", f.Version)
	}
	ag := f.Blocks["b"].Agent
	if ag.Context != "agents" || ag.Extension != "100" || ag.Priority != 1 {
		t.Errorf("agent %+v", ag)
	}
}

// A flow's dial_policy is parsed with the flow, its lines those of the
// flow file.
func TestParseDialPolicy(t *testing.T) {
	src := strings.Replace(strings.Replace(validFlow, "  c:\n    type: Disconnect\n", "", 1), "blocks:\n", "dial_policy:\n  allow: {countries: [49]}\n  endpoint_technologies: [PJSIP]\nblocks:\n", 1)
	f, err := Parse("t.yaml", []byte(src), LoadOptions{DefaultRegion: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	if f.DialPolicy == nil || len(f.DialPolicy.AllowCountries) != 1 || f.DialPolicy.AllowCountries[0] != 49 {
		t.Fatalf("dial policy %+v", f.DialPolicy)
	}
	if f.DialPolicy.CheckNumber("+43800123456") == nil {
		t.Error("the flow's policy allows Austria")
	}
	if g, err := Parse("t.yaml", []byte(strings.Replace(validFlow, "  c:\n    type: Disconnect\n", "", 1)), LoadOptions{DefaultRegion: "DE"}); err != nil || g.DialPolicy != nil {
		t.Errorf("a flow without dial_policy: %v, %v", g.DialPolicy, err)
	}
}

func TestLoadPathErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		paths []string
		want  string
	}{
		{[]string{dir}, dir + ": no *.yaml or *.yml flow files in directory"},
		{[]string{filepath.Join(dir, "nope.yaml")}, "nope.yaml: stat: no such file or directory"},
		{nil, "no flow files given"},
	} {
		_, err := LoadFiles(LoadOptions{}, tc.paths...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadFiles(%v) = %v, want %q", tc.paths, err, tc.want)
		}
	}
}

func TestParseMultipleErrorsInOneFile(t *testing.T) {
	src := `name: x
version: "1"
entry: [x]
start: a
blocks:
  a:
    type: TransferToPhoneNumber
    number: "+49 30"
    dtmf: "x"
    timeout: abc
    branches: {Success: b, CallFailed: b, Timeout: b}
`
	_, err := Parse("m.yaml", []byte(src), LoadOptions{})
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 6 {
		t.Fatalf("want 6 errors, got %v", err)
	}
	for i, line := range []int{8, 9, 10, 11, 11, 11} {
		if list[i].Line != line {
			t.Errorf("error %d at line %d, want %d: %v", i, list[i].Line, line, list[i])
		}
	}
}
