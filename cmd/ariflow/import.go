package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ariflow/ariflow/flows/connect"
)

const importUsage = `usage: ariflow import connect [-o OUT] [-report REPORT] [-entry [FLOW=]NUMBERS]...
           [-lambda-map FILE] [-queue-map FILE] [-prompt-map FILE] [-lex-map FILE] [-flow-map FILE]
           [-hours open|closed] [-region DE] FLOW.json|DIR...`

// entryFlags collects repeated -entry flags: "NUMBERS" for a single flow,
// "FLOW=NUMBERS" for one flow of a set.
type entryFlags struct {
	single []string
	byFlow map[string][]string
}

func (e *entryFlags) String() string { return "" }

func (e *entryFlags) Set(v string) error {
	name, list, named := strings.Cut(v, "=")
	if !named {
		list = v
	}
	var out []string
	for _, x := range strings.Split(list, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		return fmt.Errorf("no entries in %q", v)
	}
	if !named {
		e.single = append(e.single, out...)
		return nil
	}
	if e.byFlow == nil {
		e.byFlow = map[string][]string{}
	}
	e.byFlow[strings.TrimSpace(name)] = append(e.byFlow[strings.TrimSpace(name)], out...)
	return nil
}

// runImport implements "ariflow import connect …": Amazon Connect flow
// exports (files, directories of them, or instance exports) become
// ariflow YAML flows, validated together, and a report of how each
// Connect action was mapped (stderr, or -report). One flow goes to
// standard output or the file -o; several go to the directory -o, one
// NAME.yaml each. The report is written also when the import fails, and
// every problem is printed, one a line, by flow and action.
// Exit codes: 0 imported, 1 the flows would not run, 2 usage.
func runImport(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "connect" {
		fmt.Fprintln(stderr, importUsage)
		return 2
	}
	fs := flag.NewFlagSet("import connect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the YAML flow to this file, or the flows of a set to this directory (default: standard output, one flow)")
	report := fs.String("report", "", "write the mapping report here (default: standard error)")
	maps := map[string]*string{}
	for _, m := range []struct{ name, usage string }{
		{"lambda-map", "YAML file mapping Lambda function ARNs (or names) to webhook URLs"},
		{"queue-map", "YAML file mapping queue ARNs, IDs or names to dialplan context[,extension[,priority]]"},
		{"prompt-map", "YAML file mapping prompt ARNs, IDs or names (or S3 URIs) to media URIs (sound:name) or sound files (name.wav)"},
		{"lex-map", "YAML file mapping Lex bot alias ARNs, bot IDs or names to webhook URLs that answer for the bot"},
		{"flow-map", "YAML file mapping flows not in this import (ARN, ID or name) to the ariflow flows they became"},
	} {
		maps[m.name] = fs.String(m.name, "", m.usage)
	}
	hours := fs.String("hours", "", "take CheckHoursOfOperation as always open or always closed")
	region := fs.String("region", "", "default region (e.g. DE) for numbers written without +")
	var entries entryFlags
	fs.Var(&entries, "entry", "entries (called numbers) that start a flow, comma-separated: NUMBERS for one flow, FLOW=NUMBERS for a flow of a set (repeatable); default: the flow's name")
	fs.Usage = func() {
		fmt.Fprintln(stderr, importUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 || *hours != "" && *hours != "open" && *hours != "closed" {
		fs.Usage()
		return 2
	}
	opts := connect.Options{Hours: *hours, DefaultRegion: *region, Entries: entries.single, FlowEntries: entries.byFlow}
	for name, dst := range map[string]*map[string]string{"lambda-map": &opts.Lambdas, "queue-map": &opts.Queues,
		"prompt-map": &opts.Prompts, "lex-map": &opts.Lex, "flow-map": &opts.Flows} {
		m, err := readMap(*maps[name])
		if err != nil {
			fmt.Fprintf(stderr, "ariflow import: %v\n", err)
			return 1
		}
		*dst = m
	}
	inputs, err := readInputs(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "ariflow import: %v\n", err)
		return 1
	}
	res, convErr := connect.ConvertSet(inputs, opts)
	if res != nil {
		if err := writeReport(*report, res, stderr); err != nil {
			fmt.Fprintf(stderr, "ariflow import: %v\n", err)
			return 1
		}
	}
	if convErr != nil {
		printImportErrors(stderr, convErr)
		return 1
	}
	if err := writeFlows(*out, res, stdout); err != nil {
		fmt.Fprintf(stderr, "ariflow import: %v\n", err)
		return 1
	}
	return 0
}

// readInputs reads the files named, and the *.json files of the
// directories named (not recursive, sorted).
func readInputs(paths []string) ([]connect.Input, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		found, err := filepath.Glob(filepath.Join(p, "*.json"))
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no *.json flow exports in directory", p)
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	var out []connect.Input
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, connect.Input{File: f, Data: data})
	}
	return out, nil
}

func printImportErrors(w io.Writer, err error) {
	var e *connect.Error
	if errors.As(err, &e) {
		for _, p := range e.Problems {
			fmt.Fprintf(w, "ariflow import: %s\n", p)
		}
		fmt.Fprintf(w, "ariflow import: %d problems; nothing written\n", len(e.Problems))
		return
	}
	fmt.Fprintf(w, "ariflow import: %v\n", err)
}

// writeFlows writes one flow to out (a file, or standard output), or the
// flows of a set to the directory out, NAME.yaml each.
func writeFlows(out string, res *connect.SetResult, stdout io.Writer) error {
	isDir := false
	if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		isDir = true
	}
	if len(res.Flows) == 1 && !isDir {
		if out == "" {
			_, err := stdout.Write(res.Flows[0].YAML)
			return err
		}
		return os.WriteFile(out, res.Flows[0].YAML, 0o644)
	}
	if out == "" {
		return fmt.Errorf("%d flows: name a directory to write them to with -o", len(res.Flows))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, r := range res.Flows {
		if err := os.WriteFile(filepath.Join(out, r.Report.Flow+".yaml"), r.YAML, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func readMap(path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return connect.ParseMap(path, data)
}

func writeReport(path string, res *connect.SetResult, stderr io.Writer) error {
	w := stderr
	var f *os.File
	if path != "" {
		var err error
		if f, err = os.Create(path); err != nil {
			return err
		}
		w = f
	}
	err := res.WriteText(w)
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
