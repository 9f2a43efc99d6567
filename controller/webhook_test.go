package controller

import (
	"maps"
	"strings"
	"testing"
)

func TestWebhookAttributes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		raw  string
		want map[string]string
	}{
		{"empty object", `{}`, map[string]string{}},
		{"strings", `{"status":"delivered","eta":"2025-01-02","empty":""}`,
			map[string]string{"status": "delivered", "eta": "2025-01-02", "empty": ""}},
		{"unicode and escapes", `{"name":"Jürgen \"J\" Müller","nl":"a\nb"}`,
			map[string]string{"name": `Jürgen "J" Müller`, "nl": "a\nb"}},
		// Numbers keep their JSON text: no float64 round trip.
		{"numbers", `{"int":42,"neg":-7,"float":1.5,"zero":0,"exp":1e3,"whole_float":2.0}`,
			map[string]string{"int": "42", "neg": "-7", "float": "1.5", "zero": "0", "exp": "1e3", "whole_float": "2.0"}},
		{"big number stays exact", `{"tracking":12345678901234567891}`,
			map[string]string{"tracking": "12345678901234567891"}},
		{"bools", `{"ok":true,"vip":false}`, map[string]string{"ok": "true", "vip": "false"}},
		{"nested keep their JSON text", `{"obj":{"a":1,"b":[true]},"arr":[1,"x"],"empty_arr":[]}`,
			map[string]string{"obj": `{"a":1,"b":[true]}`, "arr": `[1,"x"]`, "empty_arr": `[]`}},
		{"whitespace around", " \n{ \"a\" : \"b\" }\n", map[string]string{"a": "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := webhookAttributes([]byte(tc.raw))
			if err != nil {
				t.Fatalf("webhookAttributes(%s): %v", tc.raw, err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("webhookAttributes(%s) = %v, want %v", tc.raw, got, tc.want)
			}
		})
	}
}

// A null field is absent, not "".
func TestWebhookAttributesNull(t *testing.T) {
	t.Parallel()
	got, err := webhookAttributes([]byte(`{"gone":null,"kept":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got["kept"] != "x" {
		t.Errorf("kept = %q", got["kept"])
	}
	if v, ok := got["gone"]; ok {
		t.Errorf("null became %q", v)
	}
}

func TestWebhookAttributesNotObject(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		``,
		`[]`,
		`[{"a":"b"}]`,
		`"a string"`,
		`42`,
		`true`,
		`{"a":`,
		`{"a":"b"} trailing`,
		`<html>502 Bad Gateway</html>`,
		`null`,
	} {
		got, err := webhookAttributes([]byte(raw))
		if err == nil {
			t.Errorf("webhookAttributes(%q) = %v, want an error", raw, got)
			continue
		}
		if !strings.Contains(err.Error(), "not a JSON object") {
			t.Errorf("webhookAttributes(%q): error %q does not say it is not a JSON object", raw, err)
		}
	}
}
