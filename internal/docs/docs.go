// Package docs serves the API reference at /docs: the OpenAPI document rendered by Redoc and
// the AsyncAPI document by the AsyncAPI React component's standalone bundle, both embedded
// from their npm packages (assets/vendor, refreshed by `make docs-assets`; nothing is loaded
// from another origin), and a plain HTML rendering of both without JavaScript (/docs/plain).
package docs

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

//go:embed assets
var assets embed.FS

// Content-Security-Policy of the pages: scripts and styles of this origin only (the
// renderers inject style attributes, hence 'unsafe-inline' for styles), never framed by
// another site. Redoc's search index runs in a worker made from a blob URL.
const cspBase = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
	"connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; script-src 'self'"

const (
	cspOpenAPI = cspBase
	// The AsyncAPI component validates the document with a JSON Schema validator that
	// compiles schemas into functions at run time, so that page alone allows eval. It holds
	// no user data and takes no input but the document of this origin.
	cspAsyncAPI = cspBase + " 'unsafe-eval'"
	cspPlain    = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

// Handler serves /docs (OpenAPI), /docs/websocket (AsyncAPI), /docs/plain and
// /docs/assets/…; doc and the AsyncAPI document asyncYAML are rendered into the plain page
// once, so a document that does not parse fails here, at start-up.
func Handler(doc *openapi3.T, asyncYAML []byte) (http.Handler, error) {
	plain, err := plainPage(doc, asyncYAML)
	if err != nil {
		return nil, err
	}
	pages := map[string][]byte{}
	for name, p := range map[string]shell{
		"openapi":  {Title: doc.Info.Title, Version: doc.Info.Version, Kind: "HTTP API (OpenAPI)", Script: "openapi.js", OpenAPI: true},
		"asyncapi": {Title: doc.Info.Title, Version: doc.Info.Version, Kind: "WebSocket (AsyncAPI)", Script: "asyncapi.js", Style: "vendor/asyncapi.min.css"},
	} {
		var b bytes.Buffer
		if err := shellTmpl.Execute(&b, p); err != nil {
			return nil, fmt.Errorf("docs: rendering the %s page: %w", name, err)
		}
		pages[name] = b.Bytes()
	}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /docs", htmlPage(pages["openapi"], cspOpenAPI))
	mux.Handle("GET /docs/{$}", htmlPage(pages["openapi"], cspOpenAPI))
	mux.Handle("GET /docs/websocket", htmlPage(pages["asyncapi"], cspAsyncAPI))
	mux.Handle("GET /docs/plain", htmlPage(plain, cspPlain))
	mux.Handle("GET /docs/assets/", http.StripPrefix("/docs/assets/", newAssetServer(static)))
	return mux, nil
}

type shell struct {
	Title, Version, Kind, Script, Style string
	OpenAPI                             bool
}

func htmlPage(html []byte, csp string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write(html)
	})
}

// assetServer serves the embedded files (the pages ask for them with ?v=<API version>, so a
// cached copy never outlives an upgrade), gzip-compressed for clients that accept it (the
// renderers are 1–3 MB of JavaScript, a quarter of that compressed); each file is compressed
// once, on its first request, so that start-up pays nothing for it.
type assetServer struct {
	files fs.FS
	mu    sync.Mutex
	gz    map[string][]byte
}

func newAssetServer(files fs.FS) *assetServer {
	return &assetServer{files: files, gz: map[string][]byte{}}
}

var assetTypes = map[string]string{
	".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
	".txt": "text/plain; charset=utf-8", ".LICENSE": "text/plain; charset=utf-8", "": "text/plain; charset=utf-8",
}

func (a *assetServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Path
	ctype, known := assetTypes[path.Ext(name)]
	b, err := fs.ReadFile(a.files, name)
	if err != nil || !known || !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("Vary", "Accept-Encoding")
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") && len(b) > 1024 {
		h.Set("Content-Encoding", "gzip")
		b = a.compressed(name, b)
	}
	_, _ = w.Write(b)
}

func (a *assetServer) compressed(name string, b []byte) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	if z, ok := a.gz[name]; ok {
		return z
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // a valid level: no error
	_, _ = zw.Write(b)
	_ = zw.Close()
	a.gz[name] = buf.Bytes()
	return a.gz[name]
}

var shellTmpl = template.Must(template.New("shell").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} {{.Version}} — {{.Kind}}</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/docs/assets/docs.css?v={{.Version}}">{{if .Style}}
<link rel="stylesheet" href="/docs/assets/{{.Style}}?v={{.Version}}">{{end}}
</head><body>
<header class="docs-nav"><strong>{{.Title}} <small>v{{.Version}}</small></strong>
<nav aria-label="API documents">
<a href="/docs"{{if .OpenAPI}} aria-current="page"{{end}}>HTTP API</a>
<a href="/docs/websocket"{{if not .OpenAPI}} aria-current="page"{{end}}>WebSocket</a>
<a href="/openapi.yaml">openapi.yaml</a>
<a href="/asyncapi.yaml">asyncapi.yaml</a>
<a href="/docs/plain">Plain HTML</a>
<a href="/demo/">Live demo</a>
</nav></header>
<noscript><p class="noscript">This reference needs JavaScript; <a href="/docs/plain">the plain reference</a> shows the same documents without it.</p></noscript>
<main id="reference"></main>
{{if .OpenAPI}}<script src="/docs/assets/vendor/redoc.standalone.js?v={{.Version}}"></script>{{else}}<script src="/docs/assets/vendor/asyncapi.standalone.js?v={{.Version}}"></script>{{end}}
<script src="/docs/assets/{{.Script}}?v={{.Version}}"></script>
</body></html>
`))
