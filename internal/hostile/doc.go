// Package hostile attacks the real service (built by internal/apptest, on loopback) the way
// a hostile or broken client would — slow and oversized bodies, invalid bytes, floods of
// methods and readiness probes, creation storms, a database going away — and holds it to
// README, Hostile input and load: every answer is the documented refusal, in bounded time and memory, never a
// 5xx. Its tests are all it has; this file exists for the package's doc comment.
package hostile
