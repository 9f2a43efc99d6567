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
