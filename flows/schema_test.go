package flows

import (
	"encoding/json"
	"os"
	"slices"
	"sort"
	"testing"
)

// TestSchemaMatchesLoader keeps schema.json and the loader's tables in step.
func TestSchemaMatchesLoader(t *testing.T) {
	data, err := os.ReadFile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	type object struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Items      *object                    `json:"items"`
		Enum       []string                   `json:"enum"`
	}
	var schema struct {
		Schema     string                     `json:"$schema"`
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       map[string]json.RawMessage `json:"$defs"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("schema.json: %v", err)
	}
	if schema.Schema != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %q", schema.Schema)
	}
	if got, want := keys(schema.Properties), append(slices.Clone(topLevelKeys), optionalKeys...); !equal(got, want) {
		t.Errorf("top-level properties %v, loader knows %v", got, want)
	}

	var block object
	if err := json.Unmarshal(schema.Defs["block"], &block); err != nil {
		t.Fatal(err)
	}
	var typ object
	if err := json.Unmarshal(block.Properties["type"], &typ); err != nil {
		t.Fatal(err)
	}
	want := make([]string, len(BlockTypes))
	for i, bt := range BlockTypes {
		want[i] = string(bt)
	}
	if !equal(typ.Enum, want) {
		t.Errorf("type enum %v, loader knows %v", typ.Enum, want)
	}
	if len(blockSettings) != len(BlockTypes) {
		t.Errorf("blockSettings has %d types, BlockTypes %d", len(blockSettings), len(BlockTypes))
	}

	for _, bt := range BlockTypes {
		var def object
		if err := json.Unmarshal(schema.Defs[string(bt)], &def); err != nil || def.Properties == nil {
			t.Errorf("$defs/%s missing or broken: %v", bt, err)
			continue
		}
		var got []string
		for _, k := range keys(def.Properties) {
			if k != "type" && k != "branches" {
				got = append(got, k)
			}
		}
		if !equal(got, blockSettings[bt]) {
			t.Errorf("%s: schema settings %v, loader knows %v", bt, got, blockSettings[bt])
		}
	}

	var check object
	if err := json.Unmarshal(schema.Defs["CheckAttribute"], &check); err != nil {
		t.Fatal(err)
	}
	var conds object
	if err := json.Unmarshal(check.Properties["conditions"], &conds); err != nil || conds.Items == nil {
		t.Fatalf("CheckAttribute conditions: %v", err)
	}
	if got := keys(conds.Items.Properties); !equal(got, conditionKeys) {
		t.Errorf("condition keys %v, loader knows %v", got, conditionKeys)
	}
	var op object
	if err := json.Unmarshal(conds.Items.Properties["op"], &op); err != nil {
		t.Fatal(err)
	}
	ops := make([]string, len(operators))
	for i, o := range operators {
		ops[i] = string(o)
	}
	if !equal(op.Enum, ops) {
		t.Errorf("op enum %v, loader knows %v", op.Enum, ops)
	}
}

func keys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// equal compares as sets.
func equal(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
