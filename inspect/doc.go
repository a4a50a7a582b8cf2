// Package inspect is one model of a node home, as `vigil status` and `vigil
// doctor` see it: what `current` runs (link, installed directory, marker),
// the plan in data/upgrade-info.json as the reactor decides it
// (home.Decide, not a copy of its rules), the staged upgrades and whether
// their binaries can run, the backups, whether a vigil runs (its run lock)
// and whether the node does (the status file a running vigil keeps, checked
// against the live pid).
//
// Home builds a Report from the filesystem; it never writes. WriteText
// renders it for a person, encoding/json for tools (the field names are
// stable: scripts rely on them). Diagnose turns it into doctor's findings:
// rules are plain functions of the Report, so they are tested on reports
// built by hand, without a home or a process. What needs the system beyond
// reading files (running `<bin> version`) is a function the caller passes
// (RunVersion is the real one).
//
// The live part of the Report (app, upgrade in progress, last upgrade,
// backup, download) is observe.Status, the type a running vigil writes to
// its status file and serves at GET /status: one model, read back.
package inspect
