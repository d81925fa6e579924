// Package deploy holds what an operator deploys beside the binary: Prometheus alerts and
// recording rules with their promtool unit tests (prometheus/), the Grafana dashboard
// (grafana/) and the container image recipe (Containerfile). Its Go test starts the real
// service and checks that every metric the rules and the dashboard name exists in /metrics.
package deploy
