// Package testkit holds the helpers shmmon's tests share: polling for a condition, a log
// buffer that goroutines write while the test reads it, running a real program for a test
// (killed and reaped when the test ends), building the shmmon command once per test binary,
// writing a serve config and waiting for its workers to beat, standing in for systemd's
// notify socket, reading /metrics, and running code as a throwaway local user for the
// security tests.
//
// testkit imports shmobj (to read a worker's object), so shmobj's own tests cannot use it.
//
// Every helper cleans up what it made with t.Cleanup. A helper that needs something the
// machine may lack (root, useradd) skips the test with a reason on a developer's machine and
// fails it under CI=true, where the project's own files install everything (see [Require]).
package testkit

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI (CI=true), where a missing tool is a failure.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require skips the test with why when ok is false, or fails it under CI=true (see [InCI]).
func Require(t testing.TB, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("%s; CI=true, so this is a failure (CI must provide it)", why)
	}
	t.Skip(why)
}

// WaitFor polls cond every 10 ms until it holds, and fails the test after timeout, naming what
// it waited for.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Poll calls cond every 10 ms until it holds or timeout has passed, and reports whether it
// held: [WaitFor] for a test that counts a wait that ran out instead of failing on it.
func Poll(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// Receive waits up to timeout for a value from ch and returns it; it fails the test, naming
// what it waited for, when none comes.
func Receive[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
		var zero T
		return zero
	}
}

// Every calls f every period, from a goroutine of its own, until stop is called or the test
// ends; stop (safe to call twice) returns once that goroutine has ended.
func Every(t testing.TB, period time.Duration, f func()) (stop func()) {
	quit, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		for {
			select {
			case <-quit:
				return
			case <-time.After(period):
			}
			f()
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(quit); <-ended }) }
	t.Cleanup(stop)
	return stop
}

// StillOpen reports whether the peer still holds c open: a read waits 100 ms in vain rather
// than ending.
func StillOpen(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// FreeAddr returns a loopback address, 127.0.0.1:PORT, that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// LinesWith returns the lines that contain every one of words.
func LinesWith(lines []string, words ...string) []string {
	var out []string
next:
	for _, l := range lines {
		for _, w := range words {
			if !strings.Contains(l, w) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// Name returns a name for an object or a file of the test, unique per test binary and test:
// prefix, the pid and the test's name with '/' and ' ' replaced.
func Name(t testing.TB, prefix string) string {
	return fmt.Sprintf("%s-%d-%s", prefix, os.Getpid(), strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()))
}
