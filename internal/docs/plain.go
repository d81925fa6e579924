package docs

import (
	"bytes"
	"fmt"
	"html/template"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

type param struct {
	In, Name, Type, Description string
	Required                    bool
}

type response struct {
	Status, Description, Schema string
}

type operation struct {
	Method, Path, ID, Summary, Description, Body string
	Public                                       bool
	Params                                       []param
	Responses                                    []response
}

type page struct {
	Title, Version, Description string
	Ops                         []operation
	Schemas                     []schema
	Async                       *asyncPage
}

type schema struct {
	Name, JSON string
}

// plainPage renders doc and the AsyncAPI document asyncYAML once into one HTML page without
// JavaScript: the fallback of /docs for readers without it (/docs/plain).
func plainPage(doc *openapi3.T, asyncYAML []byte) ([]byte, error) {
	p := page{Title: doc.Info.Title, Version: doc.Info.Version, Description: doc.Info.Description}
	async, err := renderAsyncAPI(asyncYAML)
	if err != nil {
		return nil, err
	}
	p.Async = async
	paths := doc.Paths.InMatchingOrder()
	sort.Strings(paths)
	for _, path := range paths {
		item := doc.Paths.Value(path)
		for method, op := range item.Operations() {
			o := operation{Method: method, Path: path, ID: op.OperationID, Summary: op.Summary, Description: op.Description}
			o.Public = op.Security != nil && len(*op.Security) == 0
			for _, pr := range append(item.Parameters, op.Parameters...) {
				if pr.Value == nil {
					continue
				}
				o.Params = append(o.Params, param{In: pr.Value.In, Name: pr.Value.Name, Required: pr.Value.Required,
					Type: schemaName(pr.Value.Schema), Description: pr.Value.Description})
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				var cts []string
				for ct, mt := range op.RequestBody.Value.Content {
					cts = append(cts, ct+" "+schemaName(mt.Schema))
				}
				sort.Strings(cts)
				o.Body = strings.Join(cts, "; ")
			}
			for status, r := range op.Responses.Map() {
				if r.Value == nil {
					continue
				}
				desc := ""
				if r.Value.Description != nil {
					desc = *r.Value.Description
				}
				var sch []string
				for ct, mt := range r.Value.Content {
					sch = append(sch, ct+" "+schemaName(mt.Schema))
				}
				sort.Strings(sch)
				o.Responses = append(o.Responses, response{Status: status, Description: desc, Schema: strings.Join(sch, "; ")})
			}
			sort.Slice(o.Responses, func(i, j int) bool { return o.Responses[i].Status < o.Responses[j].Status })
			p.Ops = append(p.Ops, o)
		}
	}
	sort.SliceStable(p.Ops, func(i, j int) bool {
		if p.Ops[i].Path != p.Ops[j].Path {
			return p.Ops[i].Path < p.Ops[j].Path
		}
		return p.Ops[i].Method < p.Ops[j].Method
	})
	names := make([]string, 0, len(doc.Components.Schemas))
	for n := range doc.Components.Schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := doc.Components.Schemas[n].Value.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("docs: schema %s: %w", n, err)
		}
		var pretty bytes.Buffer
		if err := indentJSON(&pretty, b); err != nil {
			return nil, err
		}
		p.Schemas = append(p.Schemas, schema{Name: n, JSON: pretty.String()})
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, p); err != nil {
		return nil, fmt.Errorf("docs: rendering: %w", err)
	}
	return buf.Bytes(), nil
}

func schemaName(s *openapi3.SchemaRef) string {
	if s == nil {
		return ""
	}
	if s.Ref != "" {
		return s.Ref[strings.LastIndex(s.Ref, "/")+1:]
	}
	if s.Value == nil || s.Value.Type == nil {
		return "any"
	}
	t := strings.Join(s.Value.Type.Slice(), "|")
	if s.Value.Type.Is("array") && s.Value.Items != nil {
		return "[]" + schemaName(s.Value.Items)
	}
	if s.Value.Format != "" {
		t += " (" + s.Value.Format + ")"
	}
	return t
}

var tmpl = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} — API reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
code,pre{font:13px ui-monospace,monospace}pre{background:#f5f5f5;padding:.6rem;overflow:auto}
.op{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.6rem 1rem}
.m{font-weight:700;display:inline-block;min-width:4.5rem}.GET{color:#0a6}.POST{color:#06c}.DELETE{color:#c30}.PUT,.PATCH{color:#a60}
table{border-collapse:collapse}td,th{border-bottom:1px solid #eee;padding:.2rem .6rem;text-align:left;vertical-align:top}
.pub{font-size:12px;background:#eef;padding:0 .4rem;border-radius:4px}
</style></head><body>
<h1>{{.Title}} <small>v{{.Version}}</small></h1>
<p>The plain reference, without JavaScript; the <a href="/docs">navigable one</a> renders the same documents.
Machine-readable contracts: <a href="/openapi.yaml">openapi.yaml</a> (HTTP) and
<a href="/asyncapi.yaml">asyncapi.yaml</a> (WebSocket presence and cursors, <a href="#websocket">rendered below</a>).
Try it all in the <a href="/demo/">live demo</a>.</p>
<pre>{{.Description}}</pre>
<h2>Operations</h2>
{{range .Ops}}<div class="op" id="{{.ID}}">
<div><span class="m {{.Method}}">{{.Method}}</span> <code>{{.Path}}</code> {{if .Public}}<span class="pub">no auth</span>{{end}}</div>
<p><b>{{.ID}}</b> — {{.Summary}}</p>{{if .Description}}<pre>{{.Description}}</pre>{{end}}
{{if .Params}}<table><tr><th>in</th><th>name</th><th>type</th><th>required</th><th></th></tr>
{{range .Params}}<tr><td>{{.In}}</td><td><code>{{.Name}}</code></td><td>{{.Type}}</td><td>{{.Required}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}
{{if .Body}}<p>Body: <code>{{.Body}}</code></p>{{end}}
<table><tr><th>status</th><th>meaning</th><th>body</th></tr>
{{range .Responses}}<tr><td>{{.Status}}</td><td>{{.Description}}</td><td><code>{{.Schema}}</code></td></tr>{{end}}</table>
</div>{{end}}
<h2>Schemas</h2>
{{range .Schemas}}<h3 id="schema-{{.Name}}">{{.Name}}</h3><pre>{{.JSON}}</pre>{{end}}
{{with .Async}}<h1 id="websocket">{{.Title}} <small>v{{.Version}} (AsyncAPI)</small></h1>
<p>Channel: <code>GET {{.Address}}</code> (WebSocket). Document: <a href="/asyncapi.yaml">asyncapi.yaml</a>.</p>
<pre>{{.Description}}</pre>
{{range .Operations}}<div class="op"><p><b>{{.Title}}</b> ({{.Action}})</p>{{if .Description}}<p>{{.Description}}</p>{{end}}
<table><tr><th>message</th><th>meaning</th><th>payload</th></tr>
{{range .Messages}}<tr><td><code>{{.Name}}</code></td><td>{{.Title}}</td><td><a href="#ws-schema-{{.Payload}}"><code>{{.Payload}}</code></a></td></tr>{{end}}</table></div>{{end}}
<h2>WebSocket schemas</h2>
{{range .Schemas}}<h3 id="ws-schema-{{.Name}}">{{.Name}}</h3><pre>{{.JSON}}</pre>{{end}}{{end}}
</body></html>
`))
