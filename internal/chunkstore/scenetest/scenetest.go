// Package scenetest makes whiteboard-like test documents: the snapshots whose storage cost
// internal/chunkstore's choices and the snapshot benchmarks measure.
package scenetest

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
)

// The test scene is shaped like a whiteboard document: a JSON store of shapes, most of them
// freehand strokes (a few dozen points with two decimals), some text. 1000 shapes make
// about 1 MiB.

type sceneShape struct {
	ID       string     `json:"id"`
	Type     string     `json:"type"`
	X        float64    `json:"x"`
	Y        float64    `json:"y"`
	Rotation float64    `json:"rotation"`
	Index    string     `json:"index"`
	ParentID string     `json:"parentId"`
	Props    sceneProps `json:"props"`
}

type sceneProps struct {
	Color    string         `json:"color"`
	Size     string         `json:"size"`
	Complete bool           `json:"isComplete"`
	Segments []sceneSegment `json:"segments,omitempty"`
	Text     string         `json:"text,omitempty"`
}

type sceneSegment struct {
	Type   string       `json:"type"`
	Points []scenePoint `json:"points"`
}

type scenePoint struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	Z float64 `json:"z"`
}

var (
	sceneColors = []string{"black", "blue", "red", "green", "orange", "violet"}
	sceneWords  = []string{"integral", "limit", "x", "y", "derivative", "proof", "lemma", "=", "+", "triangle", "area", "sum"}
)

func round2(f float64) float64 { return math.Round(f*100) / 100 }

func newSceneShape(r *rand.Rand, n int) sceneShape {
	s := sceneShape{
		ID: fmt.Sprintf("shape:%016x", r.Uint64()), Type: "draw", Index: fmt.Sprintf("a%d", n), ParentID: "page:page",
		X: round2(r.Float64() * 2000), Y: round2(r.Float64() * 1500),
		Props: sceneProps{Color: sceneColors[r.IntN(len(sceneColors))], Size: "m", Complete: true},
	}
	if r.IntN(6) == 0 {
		s.Type = "text"
		for range 5 + r.IntN(20) {
			s.Props.Text += sceneWords[r.IntN(len(sceneWords))] + " "
		}
		return s
	}
	var pts []scenePoint
	x, y := 0.0, 0.0
	for range 10 + r.IntN(50) {
		x += r.NormFloat64() * 3
		y += r.NormFloat64() * 3
		pts = append(pts, scenePoint{round2(x), round2(y), 0.5})
	}
	s.Props.Segments = []sceneSegment{{Type: "free", Points: pts}}
	return s
}

func encodeScene(shapes []sceneShape) []byte {
	b, err := json.Marshal(map[string]any{"schemaVersion": 2, "store": shapes})
	if err != nil {
		panic(err)
	}
	return b
}

// Autosaves returns n revisions of a ~1 MiB scene, each after the previous with about 1 %
// of it changed at 10 random places in the middle 80 %: 4 strokes redrawn, 3 moved, 2 added
// and 1 erased (10 of 1000 shapes).
func Autosaves(seed uint64, n int) [][]byte {
	r := rand.New(rand.NewPCG(seed, 1))
	shapes := make([]sceneShape, 0, 1000)
	for i := range 1000 {
		shapes = append(shapes, newSceneShape(r, i))
	}
	out := [][]byte{encodeScene(shapes)}
	for len(out) < n {
		mid := func() int { return len(shapes)/10 + r.IntN(len(shapes)*8/10) }
		for range 4 {
			i := mid()
			shapes[i] = newSceneShape(r, i)
		}
		for range 3 {
			i := mid()
			shapes[i].X, shapes[i].Y = round2(shapes[i].X+r.NormFloat64()*30), round2(shapes[i].Y+r.NormFloat64()*30)
		}
		for range 2 {
			i := mid()
			shapes = append(shapes[:i], append([]sceneShape{newSceneShape(r, i)}, shapes[i:]...)...)
		}
		for range 1 {
			i := mid()
			shapes = append(shapes[:i], shapes[i+1:]...)
		}
		out = append(out, encodeScene(shapes))
	}
	return out
}
