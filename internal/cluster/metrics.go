package cluster

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the node's purge metrics: presence rows of dead nodes this node
// deleted (not those of nodes that stopped cleanly: a rolling restart is no incident), and the times this node found itself purged by the others.
func (n *Node) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "m4sh_cluster_presence_purged_total",
			Help: "Presence rows (a user's connections to a session on one node) of silent nodes that this node purged, those of nodes that stopped cleanly excepted.",
		}, func() float64 { return float64(n.purgedRows.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "m4sh_cluster_self_purged_total",
			Help: "Times this node found it had been purged by the others (it could not heartbeat for CLUSTER_PURGE_AFTER) and recorded its connections again.",
		}, func() float64 { return float64(n.selfPurged.Load()) }),
	}
}
