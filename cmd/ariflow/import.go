package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ariflow/ariflow/flows/connect"
)

const importUsage = "usage: ariflow import connect [-entry NUMBERS] [-o OUT.yaml] [-report REPORT] [-lambda-map FILE] [-queue-map FILE] [-hours open|closed] [-region DE] FILE.json"

// runImport implements "ariflow import connect …": an Amazon Connect flow
// export becomes an ariflow YAML flow (stdout, or -o) and a report of how
// each Connect action was mapped (stderr, or -report). The report is
// written also when the import fails, so the user sees every action.
// Exit codes: 0 imported, 1 the flow would not run, 2 usage.
func runImport(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "connect" {
		fmt.Fprintln(stderr, importUsage)
		return 2
	}
	fs := flag.NewFlagSet("import connect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the YAML flow here (default: standard output)")
	report := fs.String("report", "", "write the mapping report here (default: standard error)")
	lambdaMap := fs.String("lambda-map", "", "YAML file mapping Lambda function ARNs (or names) to webhook URLs")
	queueMap := fs.String("queue-map", "", "YAML file mapping queue ARNs, IDs or names to dialplan context[,extension[,priority]]")
	hours := fs.String("hours", "", "take CheckHoursOfOperation as always open or always closed")
	region := fs.String("region", "", "default region (e.g. DE) for numbers written without +")
	entry := fs.String("entry", "", "comma-separated entries (called numbers) that start the flow; default: its name")
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
	if fs.NArg() != 1 || *hours != "" && *hours != "open" && *hours != "closed" {
		fs.Usage()
		return 2
	}
	file := fs.Arg(0)
	opts := connect.Options{Hours: *hours, DefaultRegion: *region}
	for _, e := range strings.Split(*entry, ",") {
		if e = strings.TrimSpace(e); e != "" {
			opts.Entries = append(opts.Entries, e)
		}
	}
	var err error
	if opts.Lambdas, err = readMap(*lambdaMap); err != nil {
		fmt.Fprintf(stderr, "ariflow import: %v\n", err)
		return 1
	}
	if opts.Queues, err = readMap(*queueMap); err != nil {
		fmt.Fprintf(stderr, "ariflow import: %v\n", err)
		return 1
	}
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "ariflow import: %v\n", err)
		return 1
	}
	imp, convErr := connect.Convert(data, opts)
	if imp != nil && imp.Report != nil {
		if err := writeReport(*report, imp.Report, stderr); err != nil {
			fmt.Fprintf(stderr, "ariflow import: %v\n", err)
			return 1
		}
	}
	if convErr != nil {
		fmt.Fprintf(stderr, "ariflow import: %s: %v\n", file, convErr)
		return 1
	}
	if *out == "" {
		_, err = stdout.Write(imp.YAML)
	} else {
		err = os.WriteFile(*out, imp.YAML, 0o644)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ariflow import: %v\n", err)
		return 1
	}
	return 0
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

func writeReport(path string, r *connect.Report, stderr io.Writer) error {
	if path == "" {
		return r.WriteText(stderr)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := r.WriteText(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
