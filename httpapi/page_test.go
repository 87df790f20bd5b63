package httpapi

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestPage: GET / is the embedded status page, with view's ranking of the states in its
// script, a policy that lets it load nothing from elsewhere, and no reference to another
// origin; other paths are not the page.
func TestPage(t *testing.T) {
	s := New(fakeSource{})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if !strings.Contains(body, `const worst = ["abnormal","killed","down",`) || !strings.Contains(body, `fetch("/status"`) {
		t.Errorf("the page lacks the ranking or the fetch of /status:\n%s", body)
	}
	if m := regexp.MustCompile(`(?i)(src|href)\s*=|https?://[^w]|@import|url\(`).FindString(body); m != "" {
		t.Errorf("the page refers to something to load: %q", m)
	}
	for _, p := range []string{"/index.html", "/x"} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, rec.Code)
		}
	}
}
