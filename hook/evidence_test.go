package hook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shmmon/shmmon/monitor"
)

// TestEvidenceFile: a hook of an event with evidence reads it from the file SHMMON_EVIDENCE
// names, which is gone once the hook ended; without evidence the variable is unset.
func TestEvidenceFile(t *testing.T) {
	r, log := newRunner(0)
	dir := t.TempDir()
	e := event(monitor.EventAbnormal)
	e.Evidence = "thread 4242 state S wchan \"futex_wait_queue\"\n"
	cmd := `echo "$SHMMON_EVIDENCE" > ` + filepath.Join(dir, "path") + ` && cat "$SHMMON_EVIDENCE" > ` + filepath.Join(dir, "copy")
	if !r.Run(cmd, time.Minute, e) {
		t.Fatal("Run did not start the hook")
	}
	plain := event(monitor.EventStall)
	if !r.Run(`echo "[${SHMMON_EVIDENCE-unset}]" > `+filepath.Join(dir, "none"), time.Minute, plain) {
		t.Fatal("Run did not start the second hook")
	}
	r.Wait()
	path := strings.TrimSpace(waitFile(t, filepath.Join(dir, "path"), time.Second))
	if copied, _ := os.ReadFile(filepath.Join(dir, "copy")); string(copied) != e.Evidence {
		t.Errorf("the hook read %q from %s, want %q; log:\n%s", copied, path, e.Evidence, log)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the evidence file %s is still there after the hook: %v", path, err)
	}
	if none := waitFile(t, filepath.Join(dir, "none"), time.Second); none != "[unset]\n" {
		t.Errorf("SHMMON_EVIDENCE of an event without evidence: %q", none)
	}
}
