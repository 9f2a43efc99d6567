package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ariflow/ariflow/flows"
)

// runGraph implements "ariflow graph [-format mermaid|dot] FILE".
// Exit codes: 0 ok, 1 invalid flow, 2 usage.
func runGraph(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("graph", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "mermaid", "output format: mermaid or dot")
	region := fs.String("region", "", "default region (e.g. DE) for numbers written without +")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ariflow graph [-format mermaid|dot] [-region DE] FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	render := map[string]func(*flows.Flow) string{"mermaid": flows.Mermaid, "dot": flows.DOT}[*format]
	if render == nil {
		fmt.Fprintf(stderr, "graph: unknown format %q (want mermaid or dot)\n", *format)
		return 2
	}
	set, err := flows.LoadFiles(flows.LoadOptions{DefaultRegion: *region}, fs.Arg(0))
	if err != nil {
		printLoadErrors(stderr, err)
		return 1
	}
	if len(set.Flows) != 1 {
		fmt.Fprintf(stderr, "graph: %s holds %d flows, want one file\n", fs.Arg(0), len(set.Flows))
		return 2
	}
	fmt.Fprint(stdout, render(set.Flows[0]))
	return 0
}
