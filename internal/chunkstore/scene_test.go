package chunkstore

import "github.com/m4sh/backend/internal/chunkstore/scenetest"

// autosaves is scenetest.Autosaves: n revisions of a ~1 MiB scene, ~1 % changed each time.
func autosaves(seed uint64, n int) [][]byte { return scenetest.Autosaves(seed, n) }
