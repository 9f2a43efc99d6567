package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/policy"
)

// runValidate implements "ariflow validate [-region DE] [-dial-policy FILE]
// [files or dirs…]". Literal numbers the dial policy (the file's, or the
// default) would refuse are reported like any other problem.
// Exit codes: 0 valid, 1 invalid, 2 usage.
func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	region := fs.String("region", "", "default region (e.g. DE) for numbers written without +")
	policyFile := fs.String("dial-policy", "", "dial-out policy file to check literal numbers and endpoints against (default: the built-in policy)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ariflow validate [-region DE] [-dial-policy FILE] [files or dirs...]   (default: flows)")
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
	pol := policy.Default()
	if *policyFile != "" {
		p, err := policy.Load(*policyFile)
		if err != nil {
			printLoadErrors(stderr, err)
			return 1
		}
		pol = p
	}
	set, err := flows.LoadFiles(flows.LoadOptions{DefaultRegion: *region, EndpointTechs: pol.EndpointTechs}, paths...)
	if err != nil {
		printLoadErrors(stderr, err)
		return 1
	}
	if refused := refusedLiterals(set, pol); len(refused) > 0 {
		printLoadErrors(stderr, refused)
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

// refusedLiterals lists the literal numbers of transfers and agent
// endpoints that the policy would refuse at run time (the loader stored
// them as E.164). Numbers from attributes are checked per call.
func refusedLiterals(set *flows.Set, pol *policy.Policy) flows.ErrorList {
	var out flows.ErrorList
	for _, f := range set.Flows {
		for _, b := range f.Blocks {
			var setting string
			var v flows.Value
			switch {
			case b.Transfer != nil:
				setting, v = "number", b.Transfer.Number
			case b.Agent != nil && b.Agent.Endpoint.Literal != "" && b.Agent.Endpoint.Literal[0] == '+':
				setting, v = "endpoint", b.Agent.Endpoint
			default:
				continue
			}
			if v.Ref != nil || v.Literal == "" {
				continue
			}
			if err := pol.CheckNumber(v.Literal); err != nil {
				out = append(out, &flows.Error{File: f.File, Line: b.Line, Msg: fmt.Sprintf("block %q: %s: %s", b.ID, setting, err)})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		return out[i].Line < out[j].Line
	})
	return out
}
