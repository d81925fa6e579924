// Package demo serves the live demo app at /demo/: plain ES modules and CSS (assets/) that import
// the built TypeScript client (assets/lib/, a copy of gen/ts/dist made by `make generate`).
// Everything is embedded in the binary; nothing is fetched from elsewhere. Users sign in with
// the dev picker (the API's dev routes, present only with DEV_TOKENS=1) or a pasted token.
package demo

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Handler serves the demo under /demo/ (and redirects /demo there).
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	files := http.StripPrefix("/demo/", http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every answer, the redirect's small HTML body included, is a page of this origin
		// that is never sniffed and never framed.
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path == "/demo" {
			http.Redirect(w, r, "/demo/", http.StatusMovedPermanently)
			return
		}
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
