package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

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
// endpoints, and the technologies (and Local contexts) of literal agent
// endpoints, that the
// policy (narrowed by each flow's dial_policy) would refuse at run time
// (the loader stored numbers as E.164). Values from attributes are
// checked per call.
func refusedLiterals(set *flows.Set, base *policy.Policy) flows.ErrorList {
	var out flows.ErrorList
	for _, f := range set.Flows {
		pol := base.Narrow(f.DialPolicy)
		for _, b := range f.Blocks {
			refuse := func(setting string, err error) {
				out = append(out, &flows.Error{File: f.File, Line: b.Line, Msg: fmt.Sprintf("block %q: %s: %s", b.ID, setting, err)})
			}
			var numbers []flows.Value
			switch {
			case b.Transfer != nil:
				numbers = append([]flows.Value{b.Transfer.Number}, b.Transfer.More...)
			case b.Agent != nil && b.Agent.Endpoint.Ref == nil && strings.HasPrefix(b.Agent.Endpoint.Literal, "+"):
				numbers = []flows.Value{b.Agent.Endpoint}
			case b.Agent != nil && b.Agent.Endpoint.Ref == nil && strings.Contains(b.Agent.Endpoint.Literal, "/"):
				if err := pol.CheckEndpoint(b.Agent.Endpoint.Literal); err != nil {
					refuse("endpoint", err)
				}
			}
			for i, v := range numbers {
				if v.Ref != nil || v.Literal == "" {
					continue
				}
				setting := "number"
				switch {
				case b.Agent != nil:
					setting = "endpoint"
				case len(numbers) > 1:
					setting = fmt.Sprintf("number %d", i+1)
				}
				if err := pol.CheckNumber(v.Literal); err != nil {
					refuse(setting, err)
				}
			}
		}
	}
	out.Sort()
	return out
}
