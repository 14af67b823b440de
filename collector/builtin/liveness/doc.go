// Package liveness holds the built-in checks that tell whether things are up:
// ping (loss and round-trip time), process watch, TCP port and HTTP endpoint
// checks, and the sys.machine.alive heartbeat. A target that is down is a
// measurement (up=0, loss=1), not a collector failure: Collect returns an
// error only when the check itself could not run.
package liveness
