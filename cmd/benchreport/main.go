// Command benchreport reads `go test -bench` output on stdin and prints, for every benchmark
// with a `baseline` sub-benchmark, each sibling's cost as a ratio to that baseline measured in
// the same run. Custom metrics (deliveries/s, p99-ms, …) are printed beside ns/op.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

type result struct {
	group, name string
	metrics     map[string]float64
	order       []string
}

func main() {
	if err := report(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func report(in io.Reader, out io.Writer) error {
	var results []result
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if r, ok := parse(sc.Text()); ok {
			results = append(results, r)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	baselines := map[string]result{}
	for _, r := range results {
		if r.name == "baseline" {
			baselines[r.group] = r
		}
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tvariant\tns/op\tvs baseline\tother metrics")
	sort.SliceStable(results, func(i, j int) bool { return results[i].group < results[j].group })
	for _, r := range results {
		ratio := "-"
		if b, ok := baselines[r.group]; ok && b.metrics["ns/op"] > 0 {
			ratio = fmt.Sprintf("%.2fx", r.metrics["ns/op"]/b.metrics["ns/op"])
		}
		var extra []string
		for _, u := range r.order {
			if u != "ns/op" {
				extra = append(extra, fmt.Sprintf("%s %s", strconv.FormatFloat(r.metrics[u], 'f', -1, 64), u))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\n", r.group, r.name, r.metrics["ns/op"], ratio, strings.Join(extra, ", "))
	}
	return tw.Flush()
}

// parse reads "BenchmarkX/variant-2   1000   1234 ns/op   12 B/op ..." lines.
func parse(line string) (result, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
		return result{}, false
	}
	name := f[0]
	if i := strings.LastIndex(name, "-"); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i]
		}
	}
	group, variant, _ := strings.Cut(strings.TrimPrefix(name, "Benchmark"), "/")
	r := result{group: group, name: variant, metrics: map[string]float64{}}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			continue
		}
		r.metrics[f[i+1]] = v
		r.order = append(r.order, f[i+1])
	}
	return r, true
}
