// Command gate benchmarks the gate against a bare reverse_proxy in one run:
// the same in-process Caddy serves one site per variant, all proxying to the
// same upstream, and the load alternates between them in rounds (in a new
// order each round) so drift on the machine hits every variant alike. It
// prints requests/s, p50 and p99 per variant and each variant's throughput as
// a ratio of bare reverse_proxy: over the whole run, and as the median of
// the rounds' ratios (one disturbed round does not move it).
//
// The HMAC variant's load generator signs every request afresh (RFC 9421,
// new nonce and created each time, as a real client must); its ratio is
// against a bare reverse_proxy fed the same freshly signed requests, so the
// client's signing cost is on both sides and the ratio is the gate's.
//
// The machine may be shared, so besides wall-clock throughput the program
// reports CPU time per request (the whole process: load generator, Caddy and
// upstream, from getrusage) and the throughput that implies for a CPU-bound
// server: the ratio of CPU per request, which other processes' load disturbs
// far less than requests per second. It also reports the bytes allocated
// and the GC cycles per request (the whole process too): the difference
// between the HMAC variant and signed bare reverse_proxy is the gate's.
//
//	go run ./bench/gate [-wrk] [-duration 30s] [-conns 16] [-rounds 5] [-cpuprofile FILE]
//
// -wrk drives the gate like wrk: 32 keep-alive connections (unless -conns)
// of prepared raw HTTP/1.1 requests, and prints the median of per-round
// ratios with their spread.
//
// It is a program at the top of the layers; it builds its Caddy in process.
package main
