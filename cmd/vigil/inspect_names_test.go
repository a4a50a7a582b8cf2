//go:build linux

package main

import "github.com/vigilhq/vigil/inspect"

// The names the status and doctor tests were written with, from before the
// model and doctor's rules moved to package inspect.

type statusReport = inspect.Report

const (
	planPending = inspect.PlanPending
	planApplied = inspect.PlanApplied

	levelOK   = string(inspect.OK)
	levelWarn = string(inspect.Warn)
	levelFail = string(inspect.Fail)
)
