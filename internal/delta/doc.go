// Package delta computes and applies binary deltas between artifact
// versions: a delta rebuilds a target file from a base file the receiver
// already holds. See docs/deltas.md for the format, the measurements that
// chose the mechanism and the memory bound.
package delta
