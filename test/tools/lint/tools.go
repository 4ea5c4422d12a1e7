//go:build tools

// Package lint pins golangci-lint, which make lint builds into
// _output/tools. It is a module of its own so that the linter's
// dependencies do not move the versions test/tools builds containerd and
// runc with.
package lint

import (
	_ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
)
