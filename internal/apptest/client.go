package apptest

import (
	"bytes"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
)

// called is the set of OpenAPI operationIds that a test of this binary has called (through
// Do or HTTPClient) and whose response was validated against the document.
var called sync.Map

// CalledOperations returns the operationIds called so far by this test binary, sorted.
func CalledOperations() []string {
	var ids []string
	called.Range(func(k, _ any) bool { ids = append(ids, k.(string)); return true })
	sort.Strings(ids)
	return ids
}

// HTTPClient returns a client for the test server whose every response to a documented
// operation is validated against the OpenAPI document (a mismatch fails the test) and
// recorded in CalledOperations. Give it to the generated client (gen/client.WithHTTPClient).
func (e *Env) HTTPClient() *http.Client {
	base := e.Server.Client()
	return &http.Client{Transport: validatingTransport{env: e, next: base.Transport}, Timeout: 30 * time.Second}
}

type validatingTransport struct {
	env  *Env
	next http.RoundTripper
}

func (v validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	v.env.checkResponse(req, resp.StatusCode, resp.Header, b)
	return resp, nil
}
