//go:generate go tool -modfile=../../internal/tools/mdatagen/go.mod mdatagen metadata.yaml

// Package tailsiftextension is the tailsift extension: the durable store the
// tailsift processor and receiver write every accepted span and every
// decision to (`storage: tailsift`), and the HTTP server that fetches any
// recent trace by ID and keeps a dropped one after the fact.
package tailsiftextension // import "github.com/tailsift/tailsift/extension/tailsiftextension"
