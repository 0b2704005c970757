// Package delta computes and applies binary deltas between artifact
// versions: a delta rebuilds a target file from a base file the receiver
// already holds. It is pure logic over io.ReaderAt / io.Reader /
// io.Writer (no storage, no network); docs/deltas.md has the format, the
// measurements that chose the mechanism and how to wire it in.
//
// Mechanism. The target is cut into segments (8 MiB). Each segment gets a
// dictionary of at most DictMax (24 MiB) bytes of the base: the whole
// base when it fits, else the base regions where the segment's content
// was found through a content-defined chunk index of the base (FastCDC
// class) plus the segment's dominant alignment. The segment is coded
// against its dictionary twice, as a zstd frame with the dictionary as
// raw history and as bsdiff-class streams (copy-with-difference and
// extra bytes, found with a fixed-size hash table instead of a suffix
// array) compressed by zstd with the same dictionary, and the smaller is
// kept.
//
// Safety. The header names the base and the target (sizes, sha256s) and
// is checksummed; Apply refuses a delta for another base or target, and
// a base file that does not hash to the one named, before writing a
// byte; every field is bounds-checked before use; each zstd frame carries
// a checksum; the rebuilt file's size and sha256 are verified at the
// end. Apply streams to its writer, so on error the caller discards what
// was written; ApplyFile does that with an atomic write.
//
// Memory bound (live heap; RSS follows it when GOMEMLIMIT is set, see
// docs/deltas.md), independent of the files' sizes:
//
//   - Build: about 100 MiB of zstd encoder state (the best level's match
//     tables and a history window of DictMax+SegmentSize rounded up to a
//     power of two) + 16 MiB of hash table + DictMax + 6×SegmentSize + a
//     base chunk index of at most 16 MiB (2^20 chunks of 16 bytes: the
//     average chunk grows with the base) ≈ 200 MiB with the defaults;
//     BenchmarkBuildApply_Memory fails above 224 MiB.
//   - Apply: the dictionary (≤ the header's DictMax, refused above
//     ApplyOptions.MaxDict, 64 MiB by default) + about 6 segments
//     (≤ MaxSegment, 16 MiB by default) + the zstd decoder's window; about
//     100 MiB with the defaults, at most ~250 MiB for a hostile header at
//     the default limits; the benchmark fails above 128 MiB.
package delta
