package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestValidateExamples(t *testing.T) {
	var out, errb bytes.Buffer
	code := runValidate([]string{"../../flows/examples"}, &out, &errb)
	if code != 0 || out.String() != "2 flows OK\n" || errb.Len() != 0 {
		t.Errorf("code %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

func TestValidateFiles(t *testing.T) {
	var out, errb bytes.Buffer
	code := runValidate([]string{"-region", "DE", "../../flows/examples/hello.yaml"}, &out, &errb)
	if code != 0 || out.String() != "1 flows OK\n" {
		t.Errorf("code %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

func TestValidateBroken(t *testing.T) {
	var out, errb bytes.Buffer
	code := runValidate([]string{"../../flows/testdata/broken"}, &out, &errb)
	if code != 1 || out.Len() != 0 {
		t.Fatalf("code %d, stdout %q", code, out.String())
	}
	lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
	if len(lines) < 50 {
		t.Errorf("only %d error lines", len(lines))
	}
	for _, want := range []string{
		`../../flows/testdata/broken/number_injection.yaml:8: block "a": number: invalid phone number "123&PJSIP/999": character '&' at position 4 is not allowed`,
		`../../flows/testdata/broken/dtmf_too_long.yaml:9: block "a": dtmf: invalid DTMF: 51 characters, at most 50`,
		`../../flows/testdata/broken/loop.yaml:6: blocks "a", "b" form a loop that never waits for the caller`,
		`../../flows/testdata/broken/unreachable.yaml:10: block "orphan" is not reachable from start block "a"`,
		`../../flows/testdata/broken/missing_branch.yaml:6: block "a": missing required branch "Timeout"`,
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "../../flows/testdata/broken/") {
			t.Errorf("line without file prefix: %q", l)
		}
	}
}

func TestValidateUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runValidate([]string{"-nope"}, &out, &errb); code != 2 {
		t.Errorf("bad flag: code %d", code)
	}
	if code := runValidate([]string{"does-not-exist"}, &out, &errb); code != 1 {
		t.Errorf("missing path: code %d", code)
	}
}
