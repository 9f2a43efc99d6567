package connect

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ariflow/ariflow/flows"
)

// FuzzConvert: the importer must never panic on any JSON, and a flow it
// accepts must load again from the YAML it wrote.
func FuzzConvert(f *testing.F) {
	for _, glob := range []string{"testdata/*.json", "testdata/real/*.json"} {
		files, _ := filepath.Glob(glob)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte(`{"StartAction": "a", "Actions": [{"Identifier": "a", "Type": "Loop", "Parameters": {"LoopCount": "2"}, "Transitions": {"Conditions": [{"NextAction": "a", "Condition": {"Operator": "Equals", "Operands": ["ContinueLooping"]}}]}}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"ContactFlows": [{"Name": "x", "Content": "{}"}]}`))
	opts := Options{Hours: "open", Lambdas: map[string]string{"f": "https://x.example.com/"}, Queues: map[string]string{"Sales": "queues,sales"},
		Prompts: map[string]string{"Welcome.wav": "sound:hello-world"}, Lex: map[string]string{"Bot": "https://nlu.example.com/"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Convert(data, opts)
		if err != nil {
			return
		}
		if _, err := flows.Parse("fuzz.yaml", res.YAML, flows.LoadOptions{}); err != nil {
			t.Fatalf("accepted, but its YAML does not load: %v\n%s", err, res.YAML)
		}
	})
}
