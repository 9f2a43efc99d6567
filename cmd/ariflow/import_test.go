package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every test flow imports with the sample mapping files, and what the
// command writes passes "ariflow validate".
func TestImportConnectValidates(t *testing.T) {
	const td = "../../flows/connect/testdata/"
	dir := t.TempDir()
	for _, tc := range []struct {
		file       string
		reportWant []string
	}{
		{"shipping.json", []string{"greet", "block greet (PlayPrompt)"}},
		{"inbound_menu.json", []string{"UpdateFlowLoggingBehavior", "no-op"}},
		{"callback_transfer.json", []string{"To courier", "block To_courier (TransferToPhoneNumber)"}},
		{"lambda_lookup.json", []string{"InvokeLambdaFunction", "block lookup (InvokeWebhook)"}},
		{"sample_inbound.json", []string{"TransferContactToQueue", "(TransferToQueue)", "not reachable from StartAction: left out"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out := filepath.Join(dir, strings.TrimSuffix(tc.file, ".json")+".yaml")
			report := filepath.Join(dir, tc.file+".report")
			var stdout, stderr bytes.Buffer
			code := run([]string{"import", "connect", "-o", out, "-report", report,
				"-lambda-map", td + "sample.lambda-map.yaml", "-queue-map", td + "sample.queue-map.yaml", "-hours", "open", td + tc.file}, &stdout, &stderr)
			if code != 0 || stdout.Len() != 0 || stderr.Len() != 0 {
				t.Fatalf("import: code %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
			}
			rep, err := os.ReadFile(report)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.reportWant {
				if !strings.Contains(string(rep), w) {
					t.Errorf("report lacks %q:\n%s", w, rep)
				}
			}
			stdout.Reset()
			if code := run([]string{"validate", out}, &stdout, &stderr); code != 0 || stdout.String() != "1 flows OK\n" {
				t.Errorf("validate: code %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
			}
		})
	}
}

func TestImportConnectFails(t *testing.T) {
	const td = "../../flows/connect/testdata/"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string // in stderr
	}{
		{"usage", []string{"import"}, 2, []string{"usage: ariflow import connect"}},
		{"other system", []string{"import", "twilio", "x.json"}, 2, []string{"usage:"}},
		{"bad hours", []string{"import", "connect", "-hours", "maybe", td + "shipping.json"}, 2, []string{"usage:"}},
		{"missing file", []string{"import", "connect", td + "nope.json"}, 1, []string{"nope.json"}},
		{"missing map", []string{"import", "connect", "-lambda-map", td + "nope.yaml", td + "lambda_lookup.json"}, 1, []string{"nope.yaml"}},
		// No mapping files: the Lambda call and the hours check would run
		// but cannot be mapped; the report still lists every action.
		{"unmapped", []string{"import", "connect", td + "sample_inbound.json"}, 1, []string{
			"IDENTIFIER",
			"not mapped: hours of operation are kept in Connect",
			"ariflow import: flow sample_inbound_flow__first_contact_experience: action 36f675cc-81e7-4ef5-a8e2-5d940ed90475 (CheckHoursOfOperation): hours of operation",
			"(InvokeLambdaFunction): no URL for Lambda function",
			"ariflow import: 3 problems; nothing written",
		}},
		{"no lambda url", []string{"import", "connect", "-hours", "open", td + "lambda_lookup.json"}, 1, []string{
			"action lookup (InvokeLambdaFunction): no URL for Lambda function arn:aws:lambda:eu-central-1:123456789012:function:customer-lookup",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code || stdout.Len() != 0 {
				t.Errorf("code %d (want %d), stdout %q", code, tc.code, stdout.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

// Without -o the flow goes to standard output and the report to standard
// error.
func TestImportConnectStdout(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"import", "connect", "../../flows/connect/testdata/callback_transfer.json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("code %d: %s", code, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "name: courier_handoff\n") || !strings.Contains(stderr.String(), "IDENTIFIER") {
		t.Errorf("stdout %q\nstderr %q", stdout.String(), stderr.String())
	}
}

// A set: the acme flows from a directory of exports go to -o DIR, one
// file each, entries as -entry FLOW=NUMBERS says, and pass validate as a
// set; graph draws them joined.
func TestImportConnectSet(t *testing.T) {
	const real = "../../flows/connect/testdata/real/"
	src := t.TempDir()
	for _, f := range []string{"acme_main_ivr.json", "acme_shipping.json", "acme_agent_handoff.json", "acme_billing.json"} {
		data, err := os.ReadFile(real + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "flows")
	maps := []string{"-lambda-map", real + "lambda-map.yaml", "-queue-map", real + "queue-map.yaml", "-prompt-map", real + "prompt-map.yaml", "-hours", "open"}
	var stdout, stderr bytes.Buffer
	args := append(append([]string{"import", "connect", "-o", out, "-entry", "acme_main_ivr=+4930555820,+4930555821"}, maps...), src)
	if code := run(args, &stdout, &stderr); code != 0 || stdout.Len() != 0 {
		t.Fatalf("import: code %d, stdout %q, stderr %s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{`# Amazon Connect import: flow "acme_main_ivr" (Connect: "ACME Main IVR")`, "TransferToFlow                  block flow_"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	main, err := os.ReadFile(filepath.Join(out, "acme_main_ivr.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(main), "entry:\n    - \"+4930555820\"\n    - \"+4930555821\"\n") || !strings.Contains(string(main), "flow: acme_shipping\n") {
		t.Errorf("acme_main_ivr.yaml:\n%s", main)
	}
	stdout.Reset()
	if code := run([]string{"validate", out}, &stdout, &stderr); code != 0 || stdout.String() != "4 flows OK\n" {
		t.Errorf("validate: %d %q %s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := runGraph([]string{out}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), " -.->|flow| ") {
		t.Errorf("graph: %d\n%s", code, stdout.String())
	}
	// One flow of the set alone: validate names the flow it misses.
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"validate", filepath.Join(out, "acme_main_ivr.yaml")}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), `flow "acme_shipping" is not in the loaded set`) {
		t.Errorf("validate alone: %d %s", code, stderr.String())
	}
}

func TestImportConnectSetFails(t *testing.T) {
	const real = "../../flows/connect/testdata/real/"
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"set without -o", []string{"-lambda-map", real + "lambda-map.yaml", "-lex-map", real + "lex-map.yaml", real + "clinic_inbound.json", real + "clinic_scheduling.json"},
			[]string{"2 flows: name a directory to write them to with -o"}},
		{"half a set", []string{real + "acme_main_ivr.json", real + "acme_agent_handoff.json"}, []string{
			`ariflow import: flow acme_main_ivr: action 8807f355-7006-5545-b688-d204499689fb (TransferToFlow): flow "ACME Shipping" (arn:aws:connect:`,
			`ariflow import: flow acme_main_ivr: action e52e0b74-79e1-5fb3-b0c3-ee685d854e72 (TransferToFlow): flow "ACME Billing" (arn:aws:connect:`,
			"is not among the imported flows: import it with this one",
			"2 problems; nothing written",
		}},
		{"entries for two", []string{"-entry", "+4930555000", real + "clinic_inbound.json", real + "clinic_scheduling.json"},
			[]string{"entries +4930555000 given for 2 flows: name the flow each starts (FLOW=NUMBERS)"}},
		{"one pass", []string{"-lex-map", real + "lex-map.yaml", real + "profile_update.json"}, []string{
			"(StartVoiceIdStream): Voice ID", "(CheckVoiceId): Voice ID", "(InvokeLambdaFunction): no URL for Lambda function", "3 problems; nothing written",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"import", "connect", "-hours", "open", "-queue-map", real + "queue-map.yaml", "-prompt-map", real + "prompt-map.yaml"}, tc.args...)
			if code := run(args, &stdout, &stderr); code != 1 || stdout.Len() != 0 {
				t.Errorf("code %d (want 1), stdout %q", code, stdout.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}
