package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ariflow/ariflow/flows"
)

// runValidate implements "ariflow validate [-region DE] [files or dirs…]".
// Exit codes: 0 valid, 1 invalid, 2 usage.
func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	region := fs.String("region", "", "default region (e.g. DE) for numbers written without +")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ariflow validate [-region DE] [files or dirs...]   (default: flows)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{"flows"}
	}
	set, err := flows.LoadFiles(flows.LoadOptions{DefaultRegion: *region}, paths...)
	if err != nil {
		printLoadErrors(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%d flows OK\n", len(set.Flows))
	return 0
}

// printLoadErrors prints one problem per line.
func printLoadErrors(w io.Writer, err error) {
	var list flows.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(w, e.Error())
		}
		return
	}
	fmt.Fprintln(w, err)
}
