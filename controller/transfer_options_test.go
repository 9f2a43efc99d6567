package controller

import (
	"testing"
	"time"
)

func TestMatchReturnKey(t *testing.T) {
	for _, tc := range []struct {
		key, held, digit   string
		forward, stillHeld string
		matched            bool
	}{
		{"*", "", "*", "", "", true},
		{"*", "", "5", "5", "", false},
		{"**", "", "*", "", "*", false},
		{"**", "*", "*", "", "", true},
		{"**", "*", "5", "*5", "", false}, // the held * was not the key after all
		{"*#", "*", "*", "*", "*", false}, // "**": the first goes, the second may begin "*#"
		{"*#", "*", "#", "", "", true},
		{"12", "", "1", "", "1", false},
		{"12", "1", "1", "1", "1", false},
		{"#", "", "#", "", "", true},
	} {
		fwd, held, ok := matchReturnKey(tc.key, tc.held, tc.digit)
		if fwd != tc.forward || held != tc.stillHeld || ok != tc.matched {
			t.Errorf("matchReturnKey(%q, %q, %q) = %q, %q, %v; want %q, %q, %v",
				tc.key, tc.held, tc.digit, fwd, held, ok, tc.forward, tc.stillHeld, tc.matched)
		}
	}
}

func TestTransferOptionsSurviveTheRecord(t *testing.T) {
	o := legOptions{tone: 150 * time.Millisecond, gap: 120 * time.Millisecond, returnKey: "**",
		maxTalk: time.Minute, warning: "sound:beep", warnBefore: 10 * time.Second,
		headers: []sipHeader{{"X-A", "1"}}}
	ts := &TransferState{Number: "+4930123456", Resume: true, Digits: "1,2", Options: o.state()}
	rec, err := DecodeRecord(mustEncode(t, &CallRecord{CallID: "c", Transfer: ts}))
	if err != nil {
		t.Fatal(err)
	}
	l := rec.Transfer.leg()
	got := l.legOptions
	got.headers = o.headers // used before the answer only; not kept
	if got.tone != o.tone || got.gap != o.gap || got.returnKey != o.returnKey || got.maxTalk != o.maxTalk ||
		got.warning != o.warning || got.warnBefore != o.warnBefore || l.digits != "1,2" || !l.resume {
		t.Errorf("leg from the record: %+v, want %+v", l, o)
	}
	if (legOptions{}).state() != nil {
		t.Error("a transfer without options records options")
	}
}

func mustEncode(t *testing.T, rec *CallRecord) []byte {
	t.Helper()
	b, err := EncodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
