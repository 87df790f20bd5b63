package httpapi

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"sync"

	"github.com/shmmon/shmmon/view"
)

// page is the status page served at /: HTML, CSS and JavaScript in one file, embedded in
// the binary, loading nothing but /status (every second) from serve itself.
//
//go:embed page/index.html
var page string

// pageCSP lets the page run its own inline script and style and fetch from serve, nothing
// else: no other origin, no form, no frame.
const pageCSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// renderPage returns the page with view's ranking of the states in its script; it is rendered
// once.
var renderPage = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	template.Must(template.New("page").Parse(page)).Execute(&b, struct{ Worst []string }{view.Worst})
	return b.Bytes()
})

// servePage answers GET / with the status page. It is read-only: it shows what /status says.
func (s *Server) servePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", pageCSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(renderPage())
}
