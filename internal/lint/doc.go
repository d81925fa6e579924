// Package lint holds repository-wide checks that run as tests: every package says what it is
// for.
package lint
