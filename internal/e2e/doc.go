// Package e2e drives the running service through the generated Go client (gen/client), so
// the client front-end and back-end consumers use is proven against the real server.
package e2e
