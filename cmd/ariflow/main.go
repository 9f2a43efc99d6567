// Command ariflow runs call flows on an Asterisk PBX through ARI.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage: ariflow <command> [flags]

commands:
  run        connect to Asterisk and Redis and run the flows
  validate   check flow files: ariflow validate [-region DE] [files or dirs...]
  graph      print a flow as a diagram: ariflow graph [-format mermaid|dot] FILE
  import     convert Amazon Connect flows: ariflow import connect [-o OUT] [-report FILE] FLOW.json|DIR...
  reload     ask a running ariflow to reload its flows (as SIGHUP does)
  records    the latest call records: ariflow records [-caller NUMBER | -call ID] [-n 10] [-json]
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runRun(args[1:], stdout, stderr)
	case "validate":
		return runValidate(args[1:], stdout, stderr)
	case "graph":
		return runGraph(args[1:], stdout, stderr)
	case "import":
		return runImport(args[1:], stdout, stderr)
	case "reload":
		return runReload(args[1:], stdout, stderr)
	case "records":
		return runRecords(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ariflow: unknown command %q\n%s", args[0], usage)
		return 2
	}
}
