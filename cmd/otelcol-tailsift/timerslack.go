package main

// Not generated: ocb leaves files it does not write alone. The process's
// timer slack is set before anything else starts (internal/timerslack):
// apply's init may execute this binary again, once.
import _ "github.com/tailsift/tailsift/internal/timerslack/apply"
