package vault

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkUnlock is the one-time cost per process and salt: scrypt at the
// default parameters (N=2^15, r=8, p=1), through a cold cache each time.
func BenchmarkUnlock(b *testing.B) {
	material := []byte("clawguard-vault passphrase\x00" + testPass)
	p := kdfParams{Salt: make([]byte, 32), N: DefaultScryptN, R: 8, P: 1}
	for b.Loop() {
		c := &keyCache{entries: map[[32]byte]*cachedKey{}}
		if _, err := c.get(material, p); err != nil {
			b.Fatal(err)
		}
	}
}

// reportCPU adds cpu-ns/op (user+system time of the process): on a shared,
// loaded machine wall time per op mostly measures waiting for a core.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchVault is a default-cost vault of 20 entries, unlocked (its key cached).
func benchVault(b *testing.B, machine bool) *Vault {
	dir := filepath.Join(b.TempDir(), "state")
	opts := Options{StateDir: dir, Passphrase: testPass}
	if machine {
		opts.Passphrase = ""
		opts.MachineIDPath = writeMachineID(b, "0123456789abcdef0123456789abcdef")
	}
	v, err := OpenWithOptions(opts)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 20 {
		if err := v.Set(fmt.Sprintf("secret_%d", i), []byte("sk-0123456789abcdef0123456789abcdef")); err != nil {
			b.Fatal(err)
		}
	}
	return v
}

// BenchmarkGet: one Get after unlock re-reads, decodes and authenticates the
// file, then opens one entry; no scrypt.
func BenchmarkGet(b *testing.B) {
	for _, machine := range []bool{false, true} {
		b.Run(map[bool]string{false: "passphrase", true: "machine"}[machine], func(b *testing.B) {
			v := benchVault(b, machine)
			defer reportCPU(b)()
			for b.Loop() {
				if _, err := v.Get("secret_7"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSet: one Set takes the lock, re-reads the file, seals the value
// and replaces the file atomically (two fsyncs: file and directory).
func BenchmarkSet(b *testing.B) {
	v := benchVault(b, false)
	value := []byte("sk-0123456789abcdef0123456789abcdef")
	defer reportCPU(b)()
	for b.Loop() {
		if err := v.Set("secret_7", value); err != nil {
			b.Fatal(err)
		}
	}
}
