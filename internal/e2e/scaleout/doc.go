// Package scaleout holds the end-to-end tests of a tailsift cluster: one
// agent (the otlp receiver and the tailsift exporter) routing by trace ID
// to gateways (the tailsift processor) on 127.0.0.11, .12, … sharing one
// port, their membership from a static list or from an in-process DNS
// server, and an in-test OTLP sink recording every span the gateways keep
// and which gateway sent it.
//
// A test client sends traces whose spans arrive over about three seconds,
// 30 % of them error or slow traces, while a scenario changes the gateway
// set: a gateway added, removed, restarted in Kubernetes order, killed. The
// checker then says, for each error and slow trace, whether it arrived
// whole from one gateway, in two parts from two gateways, incomplete (split,
// and a part dropped), or not at all, and counts duplicate spans.
//
// The processes run the collector binary $TAILSIFT_BIN (or one built from
// cmd/otelcol-tailsift), as internal/e2e does. The tests need Linux, where
// every 127.0.0.0/8 address is a loopback address.
//
//	go test -race -count=1 ./internal/e2e/scaleout/ -v
package scaleout
