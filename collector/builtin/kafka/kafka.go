// Package kafka collects a Kafka broker's MBeans through a Jolokia agent (one
// bulk read per collection), named as in the seed catalogue:
//
//	kafka.broker.brokerstate, kafka.broker.delayfetch, kafka.broker.delayproduce,
//	kafka.broker.delayheartbeat, kafka.broker.delaytopic, kafka.broker.delayrebalance,
//	kafka.broker.partitioncount, kafka.broker.underreplicatedpartitions,
//	kafka.broker.isrexpandspeed, kafka.broker.isrshrinkspeed (counters)
//	kafka.broker.topic.byteinpersecond, .byteoutpersecond, .byterejectpersecond,
//	.totalfetchrequestpersecond, .totalproducerequestpersecond (counters; {topic}
//	per topic, and without the tag for all topics)
//	kafka.controller.offlinepartitioncount, kafka.controller.activecontrollerconut
//	(the seed's spelling, kept so its dashboards work), kafka.controller.uncleanLeaderElection
//	(counter), kafka.controller.leaderelectiontime (mean ms) and .leaderelectiontime.count
//	kafka.up (1 when Jolokia answered)
//
// The "persecond"/"speed" names are the MBeans' Count, a counter: ask for a
// rate when querying. Every point carries instance=<host>_<port> of the Jolokia
// agent. A broker that is not the controller reports
// kafka.controller.activecontrollerconut 0.
package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/builtin/internal/httpjson"
	"github.com/amas-eye/amas/collector/builtin/internal/points"
)

// Config is the `kafka` section of agent.yaml.
type Config struct {
	// URL is the Jolokia agent of the broker, e.g. http://broker1:8778/jolokia.
	URL string `yaml:"url"`
}

// DefaultConfig returns the defaults documented in the example agent.yaml.
func DefaultConfig() Config { return Config{URL: "http://127.0.0.1:8778/jolokia"} }

// read is one attribute of one MBean (a pattern with topic=* for per-topic
// metrics) and the metric it becomes.
type read struct {
	MBean     string `json:"mbean"`
	Attribute string `json:"attribute"`
	metric    string
}

const (
	purgatory    = "kafka.server:type=DelayedOperationPurgatory,name=NumDelayedOperations,delayedOperation="
	topicMetrics = "kafka.server:type=BrokerTopicMetrics,name="
)

var reads = []read{
	{"kafka.server:type=KafkaServer,name=BrokerState", "Value", "kafka.broker.brokerstate"},
	{purgatory + "Fetch", "Value", "kafka.broker.delayfetch"},
	{purgatory + "Produce", "Value", "kafka.broker.delayproduce"},
	{purgatory + "Heartbeat", "Value", "kafka.broker.delayheartbeat"},
	{purgatory + "topic", "Value", "kafka.broker.delaytopic"},
	{purgatory + "Rebalance", "Value", "kafka.broker.delayrebalance"},
	{"kafka.server:type=ReplicaManager,name=PartitionCount", "Value", "kafka.broker.partitioncount"},
	{"kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions", "Value", "kafka.broker.underreplicatedpartitions"},
	{"kafka.server:type=ReplicaManager,name=IsrExpandsPerSec", "Count", "kafka.broker.isrexpandspeed"},
	{"kafka.server:type=ReplicaManager,name=IsrShrinksPerSec", "Count", "kafka.broker.isrshrinkspeed"},
	{topicMetrics + "BytesInPerSec", "Count", "kafka.broker.topic.byteinpersecond"},
	{topicMetrics + "BytesOutPerSec", "Count", "kafka.broker.topic.byteoutpersecond"},
	{topicMetrics + "BytesRejectedPerSec", "Count", "kafka.broker.topic.byterejectpersecond"},
	{topicMetrics + "TotalFetchRequestsPerSec", "Count", "kafka.broker.topic.totalfetchrequestpersecond"},
	{topicMetrics + "TotalProduceRequestsPerSec", "Count", "kafka.broker.topic.totalproducerequestpersecond"},
	{topicMetrics + "BytesInPerSec,topic=*", "Count", "kafka.broker.topic.byteinpersecond"},
	{topicMetrics + "BytesOutPerSec,topic=*", "Count", "kafka.broker.topic.byteoutpersecond"},
	{topicMetrics + "BytesRejectedPerSec,topic=*", "Count", "kafka.broker.topic.byterejectpersecond"},
	{topicMetrics + "TotalFetchRequestsPerSec,topic=*", "Count", "kafka.broker.topic.totalfetchrequestpersecond"},
	{topicMetrics + "TotalProduceRequestsPerSec,topic=*", "Count", "kafka.broker.topic.totalproducerequestpersecond"},
	{"kafka.controller:type=KafkaController,name=OfflinePartitionsCount", "Value", "kafka.controller.offlinepartitioncount"},
	{"kafka.controller:type=KafkaController,name=ActiveControllerCount", "Value", "kafka.controller.activecontrollerconut"},
	{"kafka.controller:type=ControllerStats,name=UncleanLeaderElectionsPerSec", "Count", "kafka.controller.uncleanLeaderElection"},
	{"kafka.controller:type=ControllerStats,name=LeaderElectionRateAndTimeMs", "Mean", "kafka.controller.leaderelectiontime"},
	{"kafka.controller:type=ControllerStats,name=LeaderElectionRateAndTimeMs", "Count", "kafka.controller.leaderelectiontime.count"},
}

// Collector reads one broker.
type Collector struct {
	url      string
	instance string
	client   *http.Client
	now      func() time.Time
	body     []byte // the bulk read request, the same every time
}

// New validates cfg.
func New(cfg Config) (*Collector, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url: want the broker's Jolokia agent such as http://host:8778/jolokia, got %q", cfg.URL)
	}
	reqs := make([]map[string]string, len(reads))
	for i, r := range reads {
		reqs[i] = map[string]string{"type": "read", "mbean": r.MBean, "attribute": r.Attribute}
	}
	body, err := json.Marshal(reqs)
	if err != nil {
		return nil, err
	}
	return &Collector{url: strings.TrimSuffix(cfg.URL, "/") + "/", instance: u.Host,
		client: &http.Client{}, now: time.Now, body: body}, nil
}

// Name is the collector kind.
func (c *Collector) Name() string { return "kafka" }

// response is one answer of a Jolokia bulk read, in request order.
type response struct {
	Status int             `json:"status"`
	Error  string          `json:"error"`
	Value  json.RawMessage `json:"value"`
}

// Collect reads every MBean in one request. An MBean the broker does not have
// (a version without it, a broker that never was controller) is skipped.
func (c *Collector) Collect(ctx context.Context, emit collector.Emit) error {
	w := points.Writer{Emit: emit, Time: c.now(), Tags: map[string]string{"instance": c.instance}}
	var answers []response
	if err := httpjson.Post(ctx, c.client, c.url, c.body, &answers); err != nil {
		w.Add("kafka.up", 0)
		return err
	}
	if len(answers) != len(reads) {
		w.Add("kafka.up", 0)
		return fmt.Errorf("POST %s: %d answers to %d reads", c.url, len(answers), len(reads))
	}
	w.Add("kafka.up", 1)
	for i, a := range answers {
		if a.Status != http.StatusOK {
			continue
		}
		r := reads[i]
		if !strings.HasSuffix(r.MBean, "topic=*") {
			var v float64
			if json.Unmarshal(a.Value, &v) == nil {
				w.Add(r.metric, v)
			}
			continue
		}
		// A pattern read answers {"<mbean name>": {"<attribute>": value}}.
		var byName map[string]map[string]float64
		if err := json.Unmarshal(a.Value, &byName); err != nil {
			continue
		}
		for name, attrs := range byName {
			if v, ok := attrs[r.Attribute]; ok {
				w.Add(r.metric, v, "topic", keyProperty(name, "topic"))
			}
		}
	}
	return nil
}

// keyProperty returns the value of key in an MBean name's key properties.
func keyProperty(mbean, key string) string {
	_, props, _ := strings.Cut(mbean, ":")
	for _, kv := range strings.Split(props, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}
