//go:build tools

// Package tools only records the requirement on the SDK module, so that
// `go build github.com/cosmos/cosmos-sdk/simapp/simd` works in this module.
package tools

import _ "github.com/cosmos/cosmos-sdk/simapp/simd"
