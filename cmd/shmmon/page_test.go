package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shmmon/shmmon/httpapi"
	"github.com/shmmon/shmmon/internal/testkit"
	"github.com/shmmon/shmmon/shmobj"
)

// envScreenshots names a directory (docs/, say) where the tests of the status page and of
// `shmmon top` also write their screenshots, for the README.
const envScreenshots = "SHMMON_SCREENSHOTS"

// beatLoop returns the command of a worker that beats every 50ms through `shmmon beat`: a
// shell loop, which SIGSTOP hangs.
func beatLoop(t *testing.T) []string {
	return []string{"/bin/sh", "-c", `while :; do "$0" beat --name "$SHMMON_NAME" || exit 1; sleep 0.05; done`, testkit.Shmmon(t)}
}

// serveListening runs serve on the config at path with --listen until the test ends and
// returns the address its HTTP endpoint serves on.
func serveListening(t *testing.T, path string) string {
	t.Helper()
	addr := testkit.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut testkit.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"shmmon", "serve", "--config", path, "--listen", addr}, &out, &errOut)
	}()
	t.Cleanup(func() {
		cancel()
		if code := testkit.Receive(t, done, 15*time.Second, "serve to stop"); code != exitOK {
			t.Errorf("serve exit %d:\n%s", code, errOut.String())
		}
	})
	waitLog(t, &errOut, "event=listen", 1)
	return addr
}

// status gets serve's /status at addr.
func status(t *testing.T, addr string) httpapi.Status {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st httpapi.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// saveScreenshot writes png as name in the test's temp dir, and in $SHMMON_SCREENSHOTS when set.
func saveScreenshot(t *testing.T, name string, png []byte) {
	t.Helper()
	dirs := []string{t.TempDir()}
	if d := os.Getenv(envScreenshots); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", filepath.Join(d, name))
	}
}

// TestStatusPageInChromium loads serve's status page in headless Chromium: it shows both
// workers ok, then, once a worker hung by SIGSTOP is killed (restart "never"), shows the kill
// within 2 s: its row highlighted, the event listed. The page loads nothing but serve's own
// /status.
func TestStatusPageInChromium(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	testkit.Require(t, err == nil, "no chromium: make deps installs it")
	steady, hang := testkit.Name(t, "steady"), testkit.Name(t, "hang")
	t.Cleanup(func() { shmobj.Remove(steady); shmobj.Remove(hang) })
	path := filepath.Join(t.TempDir(), "shmmon.toml")
	extra := "interval = \"100ms\"\nstalls = 5\nkill_after = \"300ms\"\n"
	testkit.WriteConfig(t, path, "", []testkit.Worker{
		{Name: steady, Command: beatLoop(t), Extra: extra},
		{Name: hang, Command: beatLoop(t), Extra: extra + "restart = \"never\"\n"},
	}, "")
	addr := serveListening(t, path)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.WindowSize(1300, 400))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// The first run starts the browser, which lives as long as bctx: no deadline on bctx, but a
	// browser that does not start within a minute is stopped.
	slow := time.AfterFunc(time.Minute, cancelBrowser)
	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	slow.Stop()
	// poll waits up to timeout for the JavaScript expression to be true in the page.
	poll := func(expr string, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(bctx, timeout+5*time.Second)
		defer cancel()
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond),
			chromedp.WithPollingTimeout(timeout)))
		return err
	}
	eval := func(expr string) string {
		ctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluating %s: %v", expr, err)
		}
		return v
	}
	okRows := `Array.from(document.querySelectorAll('#workers tbody tr[data-state="ok"]')).map(r => r.dataset.name).sort().join(" ")`
	want := strings.Join([]string{hang, steady}, " ")
	if err := poll(okRows+" === "+strconv.Quote(want), 30*time.Second); err != nil {
		t.Fatalf("the page never showed both workers ok (it shows %q): %v", eval(okRows), err)
	}

	if os.Getenv(envScreenshots) != "" {
		time.Sleep(20 * time.Second) // sparklines with some history, for the README's picture
	}
	var pid int64
	for _, w := range status(t, addr).Workers {
		if w.Name == hang {
			pid = w.Pid
		}
	}
	if pid <= 1 {
		t.Fatalf("no pid for %s in /status", hang)
	}
	if err := syscall.Kill(int(pid), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var killedAt time.Time
	testkit.WaitFor(t, 20*time.Second, hang+" killed in /status", func() bool {
		for _, w := range status(t, addr).Workers {
			if w.Name == hang && w.Kills == 1 {
				killedAt = time.Now()
				return true
			}
		}
		return false
	})
	seen := fmt.Sprintf(`(() => { const r = document.querySelector('#workers tbody tr[data-name=%q]');
		return !!r && r.classList.contains("bad") && r.dataset.down === "yes" && r.querySelector("td.kills").textContent === "1" &&
			document.getElementById("events").textContent.includes(%q); })()`, hang, hang+" killed as hung")
	if err := poll(seen, 10*time.Second); err != nil {
		t.Fatalf("the page never showed the kill: %v\n%s", err, eval("document.body.innerText"))
	}
	if took := time.Since(killedAt); took > 2*time.Second {
		t.Errorf("the page showed the kill %v after /status did, want within 2s", took.Round(time.Millisecond))
	}
	if first := eval(`document.querySelector("#workers tbody tr").dataset.name`); first != hang {
		t.Errorf("first row %q, want the killed worker %q (worst first)", first, hang)
	}
	sctx, cancelShot := context.WithTimeout(bctx, 20*time.Second)
	defer cancelShot()
	png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	saveScreenshot(t, "status-page.png", png)

	// Nothing but serve's own address was asked for anything.
	for _, u := range strings.Fields(eval(`performance.getEntriesByType("resource").map(e => e.name).join(" ")`)) {
		if !strings.HasPrefix(u, "http://"+addr+"/") {
			t.Errorf("the page loaded %s", u)
		}
	}
}
