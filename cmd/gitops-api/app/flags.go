package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// helpText is what a subcommand's --help says around its flags.
type helpText struct {
	// usage is the synopsis, after "Usage: ".
	usage string
	// about says what the command does (before the flags); more comes after them
	// (environment, examples). Either may be empty.
	about, more string
	// short gives a flag a one-letter alias, e.g. "output": "o" for -o. The alias is a
	// flag of its own in the FlagSet; the help shows the two on one line.
	short map[string]string
}

// newFlagSet is a subcommand's FlagSet. It prints nothing itself: parseFlags reports
// its errors once, and prints the help in gitops-api's form rather than the flag
// package's.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses a subcommand's args. -h and --help print the help to stdout
// (helped is true: the command does nothing else); a mistake is a usageError naming
// the command, so its hint points at the right --help; positional arguments are
// refused, since no subcommand takes any.
func parseFlags(fs *flag.FlagSet, h helpText, args []string, stdout io.Writer) (helped bool, err error) {
	err = fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printHelp(stdout, fs, h)
		return true, nil
	case err != nil:
		return false, usageError{msg: flagError(err), cmd: fs.Name()}
	case fs.NArg() > 0:
		return false, usageError{msg: "unexpected arguments: " + strings.Join(fs.Args(), " "), cmd: fs.Name()}
	}
	return false, nil
}

// flagError restates a flag package error with the flag spelt as the help and the
// README spell it (--name; the package writes -name). Go accepts either spelling.
func flagError(err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return "unknown flag: --" + name
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return "flag needs an argument: --" + name
	}
	// `invalid value "v" for flag -name: reason`: the value is quoted, so the flag's
	// name is found right after it whatever the value contains.
	for _, p := range []struct{ head, mid string }{
		{"invalid value ", " for flag -"},
		{"invalid boolean value ", " for -"},
	} {
		rest, ok := strings.CutPrefix(msg, p.head)
		if !ok {
			continue
		}
		q, qerr := strconv.QuotedPrefix(rest)
		if qerr != nil {
			continue
		}
		if after, ok := strings.CutPrefix(rest[len(q):], p.mid); ok {
			return p.head + q + strings.TrimSuffix(p.mid, "-") + "--" + after
		}
	}
	return msg
}

// Help layout: long names line up whether or not a flag has a one-letter alias
// ("  -o, --output", "      --cluster"); a flag's description starts on the line after
// its name, indented past the dashes, and is wrapped, since some (serve's) run to
// several hundred characters.
const (
	helpIndent = "        "
	helpWidth  = 100
)

// printHelp prints a subcommand's help with its flags as --flag, sorted by name.
func printHelp(w io.Writer, fs *flag.FlagSet, h helpText) {
	fmt.Fprintf(w, "Usage: %s\n", h.usage)
	if s := strings.TrimSpace(h.about); s != "" {
		fmt.Fprintf(w, "\n%s\n", s)
	}
	aliases := map[string]bool{}
	for _, a := range h.short {
		aliases[a] = true
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.VisitAll(func(f *flag.Flag) {
		if aliases[f.Name] {
			return
		}
		typ, usage := flag.UnquoteUsage(f)
		name := "    --" + f.Name // room for an alias: "-o, "
		if a, ok := h.short[f.Name]; ok {
			name = "-" + a + ", --" + f.Name
		}
		if typ != "" {
			name += " " + typ
		}
		if def := defaultOf(f, typ); def != "" {
			usage += " (default " + def + ")"
		}
		fmt.Fprintf(w, "  %s\n%s\n", name, wrap(usage, helpIndent, helpWidth))
	})
	fmt.Fprintf(w, "  -h, --help\n%s\n", wrap("show this help", helpIndent, helpWidth))
	if s := strings.TrimSpace(h.more); s != "" {
		fmt.Fprintf(w, "\n%s\n", s)
	}
}

// defaultOf is a flag's default as its help shows it: nothing for the zero value of
// its type (the flag package's rule; gitops-api's flags are strings, booleans,
// durations and functions), quoted for strings.
func defaultOf(f *flag.Flag, typ string) string {
	switch f.DefValue {
	case "", "false", "0", "0s":
		return ""
	}
	if typ == "string" {
		return strconv.Quote(f.DefValue)
	}
	return f.DefValue
}

// wrap fills text into lines of at most width characters, each starting with indent;
// a word longer than a line gets a line of its own.
func wrap(text, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(text) {
		if line != indent && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if line != indent {
			line += " "
		}
		line += word
	}
	b.WriteString(line)
	return b.String()
}
