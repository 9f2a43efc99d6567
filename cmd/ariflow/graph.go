package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ariflow/ariflow/flows"
)

// runGraph implements "ariflow graph [-format mermaid|dot] FILE|DIR...":
// one flow is drawn alone; several (a directory, or flows joined by
// TransferToFlow) are drawn together, a subgraph each, TransferToFlow
// blocks joined to the flow they continue in.
// Exit codes: 0 ok, 1 invalid flow, 2 usage.
func runGraph(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("graph", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "mermaid", "output format: mermaid or dot")
	region := fs.String("region", "", "default region (e.g. DE) for numbers written without +")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ariflow graph [-format mermaid|dot] [-region DE] FILE|DIR...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	render := map[string]func(*flows.Flow) string{"mermaid": flows.Mermaid, "dot": flows.DOT}[*format]
	renderSet := map[string]func([]*flows.Flow) string{"mermaid": flows.MermaidSet, "dot": flows.DOTSet}[*format]
	if render == nil {
		fmt.Fprintf(stderr, "graph: unknown format %q (want mermaid or dot)\n", *format)
		return 2
	}
	set, err := flows.LoadFiles(flows.LoadOptions{DefaultRegion: *region}, fs.Args()...)
	if err != nil {
		printLoadErrors(stderr, err)
		return 1
	}
	if len(set.Flows) == 1 {
		fmt.Fprint(stdout, render(set.Flows[0]))
	} else {
		fmt.Fprint(stdout, renderSet(set.Flows))
	}
	return 0
}
