// Package e2e holds Outpost's end-to-end tests: the real controlplane,
// mirror and updatectl binaries on loopback ports, artifacts in a real S3
// server (versitygw), driven the way an operator and a client would drive
// them. It has no non-test code.
package e2e
