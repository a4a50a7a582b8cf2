package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/vigilhq/vigil/inspect"
)

// `vigil doctor` checks, before an upgrade height, what would make the
// upgrade go wrong at the halt: one line per finding, OK, WARN or FAIL. It
// only reads (and runs `<bin> version`); it never repairs. The rules are
// inspect.Diagnose.

// errDoctorFailed makes cli exit 1 after the findings were printed.
var errDoctorFailed = errors.New("doctor found problems (FAIL lines above); the upgrade would fail at the halt")

func doctorCmd(args []string, stdout io.Writer, getenv getenvFunc) error {
	o, r, err := inspectHome("doctor", args, false, getenv, func(_ homeOpts, opts *inspect.Options) { opts.Checks = true })
	if err != nil {
		return err
	}
	findings := inspect.Diagnose(r, func(bin string) (string, error) { return inspect.RunVersion(bin, o.timeout) })
	for _, f := range findings {
		fmt.Fprintf(stdout, "%-4s  %s\n", f.Level, f.Msg)
	}
	if inspect.Failed(findings) {
		return errDoctorFailed
	}
	return nil
}
