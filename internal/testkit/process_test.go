package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStart: the output is kept, Wait returns the exit status, and a failed test's whole
// output lands in OutputDir.
func TestStart(t *testing.T) {
	p := Start(t, "sh", exec.Command("/bin/sh", "-c", "echo out; echo err >&2; exit 3"))
	if st := p.Wait(t, 10*time.Second); st.ExitCode() != 3 {
		t.Errorf("%s: exit code %d, want 3", p.Label, st.ExitCode())
	}
	if p.Running() {
		t.Errorf("%s still running after Wait", p.Label)
	}
	if got := p.Stdout.String() + p.Stderr.String(); got != "out\nerr\n" {
		t.Errorf("%s: output %q, want %q", p.Label, got, "out\nerr\n")
	}

	dir := t.TempDir()
	OutputDir = dir
	t.Cleanup(func() { OutputDir = "" })
	p.saveOutput(t)
	base := filepath.Join(dir, fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), p.Pid()))
	for ext, want := range map[string]string{".stdout": "out\n", ".stderr": "err\n"} {
		if got, err := os.ReadFile(base + ext); err != nil || string(got) != want {
			t.Errorf("%s: %q, %v, want %q", base+ext, got, err, want)
		}
	}
}
