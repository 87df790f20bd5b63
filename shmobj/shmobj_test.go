package shmobj

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// testName returns an object name unique to this test and removes the object when the test
// ends.
func testName(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("shmmon-test-%d-%s", os.Getpid(), strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()))
	if len(name) > MaxNameLen {
		name = name[:MaxNameLen]
	}
	t.Cleanup(func() { _, _ = Remove(name) })
	return name
}

// openObject opens the object name (flag, mode), as a third party or a Boost checker does; it
// is closed when the test ends.
func openObject(t testing.TB, name string, flag Flag, mode os.FileMode) *Object {
	t.Helper()
	o, err := Open(name, flag, mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// resize truncates o to size and maps it; the mapping is closed when the test ends.
func resize(t testing.TB, o *Object, size int64) *Segment {
	t.Helper()
	if err := o.Truncate(size); err != nil {
		t.Fatal(err)
	}
	seg, err := o.Map()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	return seg
}

// noTempLeft fails the test if a temporary object of this process is left in /dev/shm.
func noTempLeft(t *testing.T) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(Dir, fmt.Sprintf(".shmmon-%d-*", os.Getpid())))
	if len(left) > 0 {
		t.Errorf("temporary objects left behind: %v", left)
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"abcd", true},
		{"a", true},
		{strings.Repeat("x", 255), true},
		{".hidden", true},
		{"", false},
		{strings.Repeat("x", 256), false},
		{"a/b", false},
		{"/abcd", false},
		{"a\x00b", false},
		{".", false},
		{"..", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.20q", tt.name), func(t *testing.T) {
			err := ValidateName(tt.name)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidName) {
					t.Errorf("error %v does not wrap ErrInvalidName", err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
			}
		})
	}
}

func TestRecordLayout(t *testing.T) {
	var r record
	if got := unsafe.Sizeof(r); got != RecordLen {
		t.Fatalf("sizeof(record) = %d, want %d", got, RecordLen)
	}
	offsets := []struct {
		field      string
		have, want uintptr
	}{
		{"magic", unsafe.Offsetof(r.magic), RecMagic},
		{"version", unsafe.Offsetof(r.version), RecVersion},
		{"length", unsafe.Offsetof(r.length), RecLength},
		{"monitorPid", unsafe.Offsetof(r.monitorPid), RecMonitorPid},
		{"watchedPid", unsafe.Offsetof(r.watchedPid), RecWatchedPid},
		{"lastSeq", unsafe.Offsetof(r.lastSeq), RecLastSeq},
		{"lastProgress", unsafe.Offsetof(r.lastProgress), RecLastProgress},
		{"lastCheck", unsafe.Offsetof(r.lastCheck), RecLastCheck},
		{"interval", unsafe.Offsetof(r.interval), RecInterval},
		{"stalls", unsafe.Offsetof(r.stalls), RecStalls},
		{"threshold", unsafe.Offsetof(r.threshold), RecThreshold},
		{"state", unsafe.Offsetof(r.state), RecState},
		{"retired", unsafe.Offsetof(r.retired), RecRetired},
		{"kills", unsafe.Offsetof(r.kills), RecKills},
		{"restarts", unsafe.Offsetof(r.restarts), RecRestarts},
		{"kind", unsafe.Offsetof(r.kind), RecKind},
	}
	for _, o := range offsets {
		if o.have != o.want {
			t.Errorf("offset of %s = %d, want %d", o.field, o.have, o.want)
		}
	}
}

func TestOpenFlags(t *testing.T) {
	name := testName(t)
	if _, err := Open(name, OpenOnly, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenOnly of a missing object: %v, want fs.ErrNotExist", err)
	}
	o, err := Open(name, CreateOnly, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	fi, err := os.Stat(Path(name))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640 whatever the umask", fi.Mode().Perm())
	}
	if _, err := Open(name, CreateOnly, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateOnly of an existing object: %v, want fs.ErrExist", err)
	}
	o2, err := Open(name, OpenOrCreate, 0o600)
	if err != nil {
		t.Fatalf("OpenOrCreate of an existing object: %v", err)
	}
	o2.Close()
	if err := o.Truncate(64); err != nil {
		t.Fatal(err)
	}
	if size, err := o.Size(); err != nil || size != 64 {
		t.Errorf("Size = %d, %v, want 64", size, err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if removed, err := Remove(name); !removed || err != nil {
		t.Errorf("Remove = %v, %v, want true, nil", removed, err)
	}
	if removed, err := Remove(name); removed || err != nil {
		t.Errorf("Remove of a missing object = %v, %v, want false, nil", removed, err)
	}
	o3, err := Open(name, OpenOrCreate, 0o600)
	if err != nil {
		t.Fatalf("OpenOrCreate of a missing object: %v", err)
	}
	o3.Close()
	if _, err := Open("a/b", OpenOrCreate, 0); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Open(a/b) = %v, want ErrInvalidName", err)
	}
}

func TestMapTooSmall(t *testing.T) {
	name := testName(t)
	o := openObject(t, name, CreateOnly, 0o600)
	if _, err := o.Map(); !errors.Is(err, ErrTooSmall) {
		t.Errorf("Map of an empty object: %v, want ErrTooSmall", err)
	}
	if _, err := Attach(name); !errors.Is(err, ErrTooSmall) {
		t.Errorf("Attach of an empty object: %v, want ErrTooSmall", err)
	}
}

func TestPublish(t *testing.T) {
	name := testName(t)
	seg, err := Publish(name, PublishOptions{WatchedPid: 1234, Interval: time.Second, Threshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	noTempLeft(t)
	fi, err := os.Stat(Path(name))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != DefaultSize || fi.Mode().Perm() != DefaultMode {
		t.Errorf("published %d bytes mode %v, want %d bytes mode %v", fi.Size(), fi.Mode().Perm(), DefaultSize, DefaultMode)
	}
	b, err := os.ReadFile(Path(name))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Record{Version: 1, MonitorPid: int64(os.Getpid()), WatchedPid: 1234, Interval: time.Second, Threshold: 3, State: StateWaiting}
	if !snap.HasRecord || snap.Record != want {
		t.Errorf("record = %+v (has %v), want %+v", snap.Record, snap.HasRecord, want)
	}
	if read, err := Read(name); err != nil || read != snap {
		t.Errorf("Read = %+v, %v, want %+v", read, err, snap)
	}
	list, err := List()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range list {
		found = found || (e.Name == name && e.Snapshot == snap)
	}
	if !found {
		t.Errorf("List does not show %s as %+v", name, snap)
	}
	if string(b[DefaultSize/2:DefaultSize/2+8]) != Magic {
		t.Errorf("magic at size/2 = %q", b[DefaultSize/2:DefaultSize/2+8])
	}

	// The worker side: a beat through another mapping is seen through the monitor's.
	w, err := Attach(name)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.ResetWorker(4321); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := w.Beat(); err != nil {
			t.Fatal(err)
		}
	}
	if seq, err := seg.Seq(); seq != 3 || err != nil {
		t.Errorf("Seq = %d, %v, want 3", seq, err)
	}
	st := Status{LastSeq: 3, LastProgress: 11, LastCheck: 12, Stalls: 2, State: StateStalled}
	if err := seg.StoreStatus(st); err != nil {
		t.Fatal(err)
	}
	seg.AddKill()
	seg.AddRestart()
	seg.AddRestart()
	snap, err = w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	want.LastSeq, want.LastProgress, want.LastCheck, want.Stalls, want.State = 3, 11, 12, 2, StateStalled
	want.Kills, want.Restarts = 1, 2
	if snap.Seq != 3 || snap.WorkerPid != 4321 || snap.Record != want {
		t.Errorf("snapshot = %+v, want seq 3, pid 4321, record %+v", snap, want)
	}
	if retired, _ := w.Retired(); retired {
		t.Error("fresh object reads retired")
	}

	// Publishing again replaces the object and retires the old one.
	seg2, err := Publish(name, PublishOptions{Size: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer seg2.Close()
	noTempLeft(t)
	if retired, err := w.Retired(); !retired || err != nil {
		t.Errorf("replaced object: Retired = %v, %v, want true", retired, err)
	}
	if err := seg.Verify(); !errors.Is(err, ErrReplaced) {
		t.Errorf("Verify of the replaced object = %v, want ErrReplaced", err)
	}
	if err := seg2.Verify(); err != nil {
		t.Errorf("Verify of the new object = %v", err)
	}
	if seq, _ := seg2.Seq(); seq != 0 {
		t.Errorf("new object seq = %d, want 0", seq)
	}
}

func TestPublishLeavesForeignObjectsAlone(t *testing.T) {
	name := testName(t)
	// A Boost checker's object: no magic in its monitor half.
	old := resize(t, openObject(t, name, CreateOnly, 0o644), 1024)
	seg, err := Publish(name, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	for i, c := range old.mem[512:] {
		if c != 0 {
			t.Fatalf("foreign object's monitor half written at %d", 512+i)
		}
	}
}

func TestPublishErrors(t *testing.T) {
	name := testName(t)
	tests := []struct {
		name string
		opts PublishOptions
		want error
	}{
		{"", PublishOptions{}, ErrInvalidName},
		{"x/y", PublishOptions{}, ErrInvalidName},
		{name, PublishOptions{Size: 15}, ErrTooSmall},
		{name, PublishOptions{Size: -1}, ErrTooSmall},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q/%d", tt.name, tt.opts.Size), func(t *testing.T) {
			if _, err := Publish(tt.name, tt.opts); !errors.Is(err, tt.want) {
				t.Errorf("Publish = %v, want %v", err, tt.want)
			}
			noTempLeft(t)
		})
	}
	// A name that cannot be renamed to: a directory in the way.
	dir := testName(t) + "-dir"
	if err := os.Mkdir(Path(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(Path(dir))
	if _, err := Publish(dir, PublishOptions{}); err == nil || !strings.Contains(err.Error(), "it is a directory") {
		t.Errorf("Publish over a directory = %v, want an error saying a directory is in the way", err)
	}
	noTempLeft(t)
}

func TestKindAndStatusText(t *testing.T) {
	name := testName(t)
	seg, err := Publish(name, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	long := strings.Repeat("x", MaxStatusText+10)
	for _, text := range []string{"ready, 3 clients", long, ""} {
		if err := seg.SetKind(KindNotify); err != nil {
			t.Fatal(err)
		}
		if err := seg.SetStatusText(text); err != nil {
			t.Fatal(err)
		}
		want := text[:min(len(text), MaxStatusText)]
		snap, err := seg.Snapshot()
		if err != nil || snap.StatusText != want || snap.Record.Kind != KindNotify {
			t.Errorf("Snapshot: text %q kind %v (%v), want %q notify", snap.StatusText, snap.Record.Kind, err, want)
		}
		read, err := Read(name)
		if err != nil || read != snap {
			t.Errorf("Read = %+v, %v, want %+v", read, err, snap)
		}
		b, _ := os.ReadFile(Path(name))
		if dec, err := Decode(b); err != nil || dec != snap {
			t.Errorf("Decode = %+v, %v, want %+v", dec, err, snap)
		}
	}
	// An object too small for the text keeps the kind and takes no text.
	small := testName(t) + "-small"
	sseg, err := Publish(small, PublishOptions{Size: 2 * (RecordLen + 8)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { sseg.Close(); Remove(small) }()
	if err := sseg.SetStatusText("hello"); err != nil {
		t.Fatal(err)
	}
	sseg.SetKind(KindSocket)
	if snap, err := Read(small); err != nil || snap.StatusText != "" || snap.Record.Kind != KindSocket {
		t.Errorf("small object: %+v, %v", snap, err)
	}
	for k, want := range map[Kind]string{KindShm: "shm", KindNotify: "notify", KindSocket: "socket", 9: "kind(9)"} {
		if k.String() != want {
			t.Errorf("Kind(%d) = %q, want %q", k, k.String(), want)
		}
	}
}

func TestSmallObjects(t *testing.T) {
	for _, size := range []int64{16, 17, 200, 255} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			name := testName(t)
			seg, err := Publish(name, PublishOptions{Size: size})
			if err != nil {
				t.Fatal(err)
			}
			defer seg.Close()
			if seg.HasRecord() {
				t.Errorf("size %d has a record", size)
			}
			if err := seg.ResetWorker(7); err != nil {
				t.Fatal(err)
			}
			if err := seg.Beat(); err != nil {
				t.Fatal(err)
			}
			if err := seg.StoreStatus(Status{State: StateOK}); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(Path(name))
			snap, err := Decode(b)
			if err != nil || snap.Seq != 1 || snap.HasRecord {
				t.Errorf("Decode = %+v, %v, want seq 1 and no record", snap, err)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	name := testName(t)
	seg, err := Publish(name, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	if err := seg.Beat(); err != nil {
		t.Fatal(err)
	}

	// A third party truncates the object to 0 under the mapping.
	o, err := Open(name, OpenOnly, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Truncate(0); err != nil {
		t.Fatal(err)
	}
	o.Close()
	if err := seg.Verify(); !errors.Is(err, ErrTruncated) {
		t.Errorf("Verify = %v, want ErrTruncated", err)
	}
	checks := map[string]func() error{
		"Seq":         func() error { _, err := seg.Seq(); return err },
		"Beat":        seg.Beat,
		"ResetWorker": func() error { return seg.ResetWorker(1) },
		"StoreStatus": func() error { return seg.StoreStatus(Status{LastCheck: 1}) },
		"Snapshot":    func() error { _, err := seg.Snapshot(); return err },
		"Retired":     func() error { _, err := seg.Retired(); return err },
		"AddKill":     seg.AddKill,
	}
	for what, f := range checks {
		if err := f(); !errors.Is(err, ErrFault) {
			t.Errorf("%s on a truncated object = %v, want ErrFault", what, err)
		}
	}

	// Removed.
	if _, err := Remove(name); err != nil {
		t.Fatal(err)
	}
	if err := seg.Verify(); !errors.Is(err, ErrGone) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Verify = %v, want ErrGone matching fs.ErrNotExist", err)
	}
	// Replaced by a regular file.
	if err := os.WriteFile(Path(name), make([]byte, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := seg.Verify(); !errors.Is(err, ErrReplaced) {
		t.Errorf("Verify = %v, want ErrReplaced", err)
	}
}

func TestFaultIsNotOtherPanics(t *testing.T) {
	defer func() {
		if v := recover(); v == nil {
			t.Error("a non-fault panic was swallowed")
		}
	}()
	func() (err error) {
		defer Unguard(Guard(), &err)
		panic("bug")
	}()
}

func TestDecode(t *testing.T) {
	if _, err := Decode(make([]byte, 15)); !errors.Is(err, ErrTooSmall) {
		t.Errorf("Decode(15 bytes) = %v, want ErrTooSmall", err)
	}
	b := make([]byte, 512)
	copy(b[256:], Magic)
	b[256+RecVersion] = 2
	if _, err := Decode(b); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("Decode of version 2 = %v, want a version error", err)
	}
	if s := State(3).String(); s != "stalled" {
		t.Errorf("State(3) = %q", s)
	}
	if s := State(42).String(); s != "state(42)" {
		t.Errorf("State(42) = %q", s)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(make([]byte, 16))
	rec := make([]byte, 4096)
	copy(rec[2048:], Magic)
	rec[2048+RecVersion] = 1
	f.Add(rec)
	f.Add([]byte("SHMMON01SHMMON01SHMMON01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err == nil && s.Size != int64(len(b)) {
			t.Errorf("size %d for %d bytes", s.Size, len(b))
		}
	})
}

func TestAdopt(t *testing.T) {
	name := testName(t)
	seg, err := Publish(name, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		seg.Beat()
	}
	seg.StoreStatus(Status{LastSeq: 5, LastCheck: 42, Stalls: 2, State: StateStalled})
	seg.SetCounts(3, 4)
	seg.Close()

	adopted, a, err := Adopt(name, PublishOptions{WatchedPid: 99, Threshold: 7})
	if err != nil || !a.Adopted || a.Refused != nil {
		t.Fatalf("Adopt = %+v, %v, want adopted", a, err)
	}
	if a.Prev.Seq != 5 || !a.Prev.HasRecord || a.Prev.Record.LastCheck != 42 || a.Prev.Record.Kills != 3 {
		t.Errorf("Adopt's previous contents %+v, want seq 5 and the record as it was", a.Prev)
	}
	snap, _ := adopted.Snapshot()
	want := Record{Version: 1, MonitorPid: int64(os.Getpid()), WatchedPid: 99, Threshold: 7, State: StateWaiting, Kills: 3, Restarts: 4}
	if snap.Seq != 5 || snap.Record != want {
		t.Errorf("adopted: seq %d record %+v, want seq 5 and %+v", snap.Seq, snap.Record, want)
	}
	adopted.Close()

	// Another size: replaced.
	replaced, a, err := Adopt(name, PublishOptions{Size: 8192})
	if err != nil || a.Adopted || a.Refused == nil {
		t.Fatalf("Adopt with another size = %+v, %v, want replaced and why", a, err)
	}
	if s, _ := replaced.Seq(); s != 0 || replaced.Size() != 8192 {
		t.Errorf("replaced object: seq %d size %d", s, replaced.Size())
	}
	replaced.Close()

	// A foreign monitor half: replaced, never written.
	Remove(name)
	foreign := resize(t, openObject(t, name, CreateOnly, 0o600), 4096)
	foreign.mem[2048+100] = 1
	if _, a, err := Adopt(name, PublishOptions{}); a.Adopted || err != nil || a.Refused == nil ||
		!strings.Contains(a.Refused.Error(), "monitor half") {
		t.Errorf("Adopt of a foreign object = %+v, %v, want replaced as not shmmon's", a, err)
	}
	if foreign.mem[2048+100] != 1 || foreign.mem[2048] != 0 {
		t.Error("foreign object's monitor half was written")
	}

	// Missing: published, nothing refused.
	Remove(name)
	fresh, a, err := Adopt(name, PublishOptions{})
	if err != nil || a.Adopted || a.Refused != nil {
		t.Fatalf("Adopt of a missing object = %+v, %v, want published", a, err)
	}
	fresh.Close()
	noTempLeft(t)
}

// TestAdoptTrust: an object that someone other than this process could have written is
// replaced, never adopted, and its contents are left as they were.
func TestAdoptTrust(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving an object to another user needs root")
	}
	const nobody = 65534
	tests := []struct {
		name  string
		mode  os.FileMode // configured
		plant func(t *testing.T, path string)
		why   string
	}{
		{"another owner", 0o600, func(t *testing.T, path string) { chown(t, path, nobody, 0) }, "owned by uid 65534"},
		{"wider mode", 0o600, func(t *testing.T, path string) { chmod(t, path, 0o622) }, "mode 0622 allows more than the configured 0600"},
		{"group writable by another group", 0o660, func(t *testing.T, path string) { chown(t, path, 0, nobody) }, "writable by group 65534"},
		{"another name", 0o600, func(t *testing.T, path string) {
			if err := os.Link(path, path+"-link"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(path + "-link") })
		}, "2 links"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := testName(t)
			seg, err := Publish(name, PublishOptions{Mode: tt.mode, WatchedPid: 1234})
			if err != nil {
				t.Fatal(err)
			}
			defer seg.Close()
			seg.Beat()
			tt.plant(t, Path(name))
			got, a, err := Adopt(name, PublishOptions{Mode: tt.mode})
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			if a.Adopted || a.Refused == nil || !strings.Contains(a.Refused.Error(), tt.why) {
				t.Errorf("Adopt = %+v, want refused: %s", a, tt.why)
			}
			if got.ID() == seg.ID() {
				t.Error("the planted object was kept under its name, want a new one")
			}
			if snap, _ := seg.Snapshot(); snap.Seq != 1 || snap.Record.MonitorPid != int64(os.Getpid()) || snap.Record.WatchedPid != 1234 {
				t.Errorf("the refused object was written: %+v", snap)
			}
			noTempLeft(t)
		})
	}
}

func chown(t *testing.T, path string, uid, gid int) {
	t.Helper()
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// within runs f and fails the test unless it returns within 5 s: it must not block.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s blocked", what)
	}
}

// TestSpecialFiles: a FIFO, a socket or a symbolic link under an object's name is never
// opened as an object, read or mapped, nor waited on; Publish and Adopt replace it as a
// stale object.
func TestSpecialFiles(t *testing.T) {
	target := testName(t) + "-target"
	t.Cleanup(func() { Remove(target) })
	tests := []struct {
		kind  string
		plant func(t *testing.T, path string)
		want  error // from Open, Attach and Read; nil: any error
	}{
		{"fifo", func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o666); err != nil {
				t.Fatal(err)
			}
		}, ErrNotRegular},
		{"socket", func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}, nil},
		{"symlink", func(t *testing.T, path string) {
			if err := os.WriteFile(Path(target), make([]byte, 4096), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(Path(target), path); err != nil {
				t.Fatal(err)
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			name := testName(t)
			tt.plant(t, Path(name))
			check := func(what string, err error) {
				t.Helper()
				if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
					t.Errorf("%s of a %s = %v, want an error (%v)", what, tt.kind, err, tt.want)
				}
			}
			within(t, "Open", func() {
				o, err := Open(name, OpenOnly, 0)
				if err == nil {
					o.Close()
				}
				check("Open", err)
			})
			within(t, "Attach", func() {
				seg, err := Attach(name)
				if err == nil {
					seg.Close()
				}
				check("Attach", err)
			})
			within(t, "Read", func() {
				_, err := Read(name)
				check("Read", err)
			})
			var a Adoption
			var seg *Segment
			var err error
			within(t, "Adopt", func() { seg, a, err = Adopt(name, PublishOptions{}) })
			if err != nil {
				t.Fatalf("Adopt over a %s: %v, want it replaced", tt.kind, err)
			}
			defer seg.Close()
			if a.Adopted || a.Refused == nil {
				t.Errorf("Adopt over a %s = %+v, want refused and replaced", tt.kind, a)
			}
			if err := seg.Verify(); err != nil {
				t.Errorf("Verify of the object that replaced a %s: %v", tt.kind, err)
			}
			if fi, err := os.Lstat(Path(name)); err != nil || !fi.Mode().IsRegular() {
				t.Errorf("after Adopt: %v, %v; want a regular file", fi.Mode(), err)
			}
			noTempLeft(t)
		})
	}
	if b, err := os.ReadFile(Path(target)); err != nil || len(b) != 4096 {
		t.Errorf("the symbolic link's target: %d bytes, %v; want it left alone", len(b), err)
	}
}

func TestValidatePublishName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"abcd", true},
		{"é-ü", true},
		{strings.Repeat("x", 255), true},
		{`a\nb`, true}, // a backslash and an n
		{"a\nb", false},
		{"\x1b[31mred", false},
		{"tab\t", false},
		{"del\x7f", false},
		{"a/b", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.20q", tt.name), func(t *testing.T) {
			err := ValidatePublishName(tt.name)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidatePublishName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
			if err != nil && (!errors.Is(err, ErrInvalidName) || strings.ContainsAny(err.Error(), "\n\x1b\t\x7f")) {
				t.Errorf("error %q: want one ErrInvalidName line without the control characters", err)
			}
		})
	}
	if _, err := Publish("a\nb", PublishOptions{}); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Publish of a name with a newline = %v, want ErrInvalidName", err)
	}
	if _, _, err := Adopt("a\nb", PublishOptions{}); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Adopt of a name with a newline = %v, want ErrInvalidName", err)
	}
}

// FuzzValidateName checks that every name ValidateName accepts is one Linux can use as a
// file name in /dev/shm, and that it never panics.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"abcd", "", ".", "..", "a/b", "a\x00b", strings.Repeat("x", 255), strings.Repeat("x", 256), "é", ".shmmon-1-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateName(name)
		if err != nil {
			if !errors.Is(err, ErrInvalidName) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("ValidateName(%q) = %v: want a one-line ErrInvalidName", name, err)
			}
			return
		}
		if name == "" || len(name) > MaxNameLen || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
			t.Fatalf("ValidateName accepted %q", name)
		}
	})
}
