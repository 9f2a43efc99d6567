package connect

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ariflow/ariflow/flows"
)

// The twelve flows in testdata/real are written in the shapes of
// published Amazon Connect exports (see testdata/real/README.md): they are
// imported as their deployments would be, flows that hand calls to each
// other together, with the mapping files in the same directory.
var realDeployments = [][]string{
	{"acme_main_ivr.json", "acme_shipping.json", "acme_agent_handoff.json", "acme_billing.json"},
	{"clinic_inbound.json", "clinic_scheduling.json"},
	{"profile_update.json"},
	{"courier_dispatch.json"},
	{"queue_router.json"},
	{"after_hours.json"},
	{"lambda_routing.json"},
	{"survey.json"},
}

// realRefused are the flows that must not import, and the action types
// that stop them: Voice ID is Connect's.
var realRefused = map[string][]string{
	"profile_update.json": {"StartVoiceIdStream", "CheckVoiceId"},
}

func realOptions(t testing.TB) Options {
	t.Helper()
	read := func(name string) map[string]string {
		data, err := os.ReadFile(filepath.Join("testdata/real", name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseMap(name, data)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	return Options{Lambdas: read("lambda-map.yaml"), Queues: read("queue-map.yaml"), Prompts: read("prompt-map.yaml"),
		Lex: read("lex-map.yaml"), Hours: "open"}
}

// realOutcome is one flow's import, for the table.
type realOutcome struct {
	file             string
	actions, blocks  int
	transfers        int
	imported         bool
	refusedTypes     []string
	problems         []string
	resumeOff, jumps int
}

func importReal(t *testing.T) []realOutcome {
	t.Helper()
	opts := realOptions(t)
	var out []realOutcome
	for _, dep := range realDeployments {
		var in []Input
		for _, f := range dep {
			data, err := os.ReadFile(filepath.Join("testdata/real", f))
			if err != nil {
				t.Fatal(err)
			}
			in = append(in, Input{File: f, Data: data})
		}
		res, err := ConvertSet(in, opts)
		var ierr *Error
		if err != nil && !errors.As(err, &ierr) {
			t.Fatalf("%v: %v", dep, err)
		}
		if len(res.Flows) != len(dep) {
			t.Fatalf("%v: %d flows imported, skipped %v", dep, len(res.Flows), res.Skipped)
		}
		for _, r := range res.Flows {
			o := realOutcome{file: r.File, imported: err == nil && r.Flow != nil}
			for _, m := range r.Report.Actions {
				o.actions++
				if m.Type == "TransferParticipantToThirdParty" {
					o.transfers++
				}
			}
			if r.Flow != nil {
				o.blocks = len(r.Flow.Blocks)
				for _, b := range r.Flow.Blocks {
					if b.Transfer != nil && !b.Transfer.Resume {
						o.resumeOff++
					}
					if b.Jump != nil {
						o.jumps++
					}
				}
			}
			if ierr != nil {
				for _, p := range ierr.Problems {
					if p.Flow == r.Report.Flow {
						o.problems = append(o.problems, p.String())
						o.refusedTypes = append(o.refusedTypes, p.Type)
					}
				}
			}
			out = append(out, o)
		}
	}
	return out
}

// At least 10 of the 12 import and validate; the one that does not is
// refused for what ariflow cannot do, every reason in one pass.
func TestRealFlowsImport(t *testing.T) {
	outs := importReal(t)
	imported := 0
	var table strings.Builder
	fmt.Fprintf(&table, "%-26s %7s %6s %9s %10s %5s  %s\n", "flow", "actions", "blocks", "transfers", "resume-off", "jumps", "result")
	for _, o := range outs {
		result := "imported, validated"
		if !o.imported {
			result = "refused: " + strings.Join(o.problems, "; ")
		} else {
			imported++
		}
		fmt.Fprintf(&table, "%-26s %7d %6d %9d %10d %5d  %s\n", o.file, o.actions, o.blocks, o.transfers, o.resumeOff, o.jumps, result)
		want := realRefused[o.file]
		if o.imported != (want == nil) {
			t.Errorf("%s: imported %v, want %v: %v", o.file, o.imported, want == nil, o.problems)
		}
		if want != nil {
			got := append([]string(nil), o.refusedTypes...)
			sort.Strings(got)
			w := append([]string(nil), want...)
			sort.Strings(w)
			if strings.Join(got, ",") != strings.Join(w, ",") {
				t.Errorf("%s: refused for %v, want %v (one pass, by action)", o.file, got, w)
			}
		}
	}
	t.Logf("\n%s%d of %d import and validate", table.String(), imported, len(outs))
	if imported < 10 || len(outs) != 12 {
		t.Errorf("%d of %d imported, want at least 10 of 12", imported, len(outs))
	}
}

// Every reachable transfer of the twelve is carried over exactly: the
// number, static or from an attribute, the timeout, resume, the DTMF, the
// caller ID number and name, and every branch.
func TestRealTransfersExact(t *testing.T) {
	opts := realOptions(t)
	checked := 0
	for _, dep := range realDeployments {
		var in []Input
		var flowsJSON []connectFlow
		for _, f := range dep {
			data, err := os.ReadFile(filepath.Join("testdata/real", f))
			if err != nil {
				t.Fatal(err)
			}
			in = append(in, Input{File: f, Data: data})
			var cf connectFlow
			if err := json.Unmarshal(data, &cf); err != nil {
				t.Fatal(err)
			}
			flowsJSON = append(flowsJSON, cf)
		}
		res, _ := ConvertSet(in, opts)
		for i, r := range res.Flows {
			if realRefused[r.File] != nil {
				continue
			}
			blockOf := map[string]string{}
			for _, m := range r.Report.Actions {
				blockOf[m.Identifier] = m.Block
			}
			f, err := flows.Parse(r.File, r.YAML, flows.LoadOptions{})
			if err != nil {
				t.Fatalf("%s: %v", r.File, err)
			}
			for _, a := range flowsJSON[i].Actions {
				if a.Type != "TransferParticipantToThirdParty" || blockOf[a.Identifier] == "" {
					continue
				}
				checked++
				checkTransfer(t, r.File, a, f.Blocks[blockOf[a.Identifier]], blockOf)
			}
		}
	}
	if checked < 8 {
		t.Errorf("%d transfers checked, want the 8 reachable ones", checked)
	}
}

func checkTransfer(t *testing.T, file string, a connectAction, b *flows.Block, blockOf map[string]string) {
	t.Helper()
	p := newParams(a.Parameters)
	tr := b.Transfer
	want := func(conn string) string {
		v, err := value(p.str(conn))
		if err != nil {
			t.Fatalf("%s %s: %v", file, conn, err)
		}
		return v
	}
	timeout := p.str("ThirdPartyConnectionTimeLimitSeconds")
	if timeout == "" {
		timeout = p.str("ThirdPartyConnectionTimeoutSeconds")
	}
	resume := p.str("ContinueFlowExecution") != "False"
	for _, c := range []struct{ what, got, want string }{
		{"number", tr.Number.String(), want("ThirdPartyPhoneNumber")},
		{"timeout", tr.Timeout.String(), timeout},
		{"resume", strconv.FormatBool(tr.Resume), strconv.FormatBool(resume)},
		{"dtmf", tr.DTMF.String(), want("ThirdPartyDTMFDigits")},
		{"caller id number", tr.CallerIDNumber.String(), mustValue(t, p.nested("CallerId", "Number"))},
		{"caller id name", tr.CallerIDName.String(), mustValue(t, p.nested("CallerId", "Name"))},
	} {
		if c.got != c.want {
			t.Errorf("%s %s: %s %q, want %q", file, a.Identifier, c.what, c.got, c.want)
		}
	}
	errT := blockOf[errorTarget(&a, "NoMatchingError")]
	branches := map[string]string{"Error": errT}
	for br, types := range map[string][]string{"CallFailed": {"CallFailed"}, "Timeout": {"ConnectionTimeLimitExceeded"}} {
		branches[br] = errT
		if to := errorTarget(&a, types...); to != "" {
			branches[br] = blockOf[to]
		}
	}
	if resume {
		branches["Success"] = blockOf[a.Transitions.NextAction]
	}
	if !sameBranches(b.Branches, branches) {
		t.Errorf("%s %s: branches %v, want %v", file, a.Identifier, b.Branches, branches)
	}
}

func mustValue(t *testing.T, v string) string {
	t.Helper()
	out, err := value(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
