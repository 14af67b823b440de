// Package hadoop collects the Hadoop-family daemons through their JMX servlet
// (GET /jmx, the JSON every Hadoop and HBase daemon serves on its web port) and,
// for the YARN ResourceManager, its REST API (/ws/v1/cluster/metrics).
//
// Each numeric attribute of a bean of interest becomes a metric named after the
// seed catalogue, <prefix>.<attribute>:
//
//	hdfs_namenode          hadoop.hdfs.NameNode.jvm.*          (JvmMetrics)
//	                       hadoop.hdfs.NameNode.FSNamesystem.*  (CapacityRemaining, CorruptBlocks, ...)
//	                       hadoop.hdfs.NameNode.FSNamesystemState.* (NumLiveDataNodes, NumStaleDataNodes, VolumeFailuresTotal, ...)
//	                       hadoop.hdfs.NameNode.NameNodeActivity.*
//	hdfs_datanode          hadoop.hdfs.DataNode.jvm.*
//	                       hadoop.hdfs.DataNode.DataNodeActivity.* (BlockVerificationFailures, HeartbeatsAvgTime, ...)
//	                       hadoop.hdfs.DataNode.FSDatasetState.*
//	hbase_master           hadoop.hbase.Master.jvm.*
//	                       hadoop.hbase.Master.*  (Server: averageLoad, numRegionServers, ...;
//	                       IPC: queueSize, numOpenConnections, ...; AssignmentManager: ritCount, ...)
//	hbase_regionserver     hadoop.hbase.RegionServer.jvm.*
//	                       hadoop.hbase.RegionServer.RSServer.* (totalRequestCount, readRequestCount, ...)
//	                       hadoop.hbase.RegionServer.RSIpc.*    (numActiveHandler, QueueCallTime_mean, ...)
//	                       hadoop.hbase.RegionServer.WAL.*      (slowAppendCount, SyncTime_mean, ...)
//	yarn_resourcemanager   hadoop.mapreduce.*     (appsSubmitted, availableMB, ... of /ws/v1/cluster/metrics)
//	                       hadoop.mapreduce.jvm.*
//
// and <prefix of the daemon>.up (1 when the daemon answered, else 0). Every
// point carries instance=<host>_<port>. Values are reported as the daemons count
// them: counters stay counters (ask for a rate when querying).
package hadoop

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/builtin/internal/httpjson"
	"github.com/amas-eye/amas/collector/builtin/internal/points"
)

// Config is the section of one daemon in agent.yaml.
type Config struct {
	// URL is the daemon's web address, e.g. http://namenode1:9870.
	URL string `yaml:"url"`
}

// Daemon says which beans of a daemon's /jmx are read, and how they are named.
type Daemon struct {
	kind  string // the collector kind, also its name
	up    string // the liveness metric
	beans []beanRule
	// cluster, when set, is a REST document read besides /jmx (YARN).
	cluster *restRule
}

// beanRule names the attributes of the beans whose name matches.
type beanRule struct {
	match  func(name string) bool
	prefix string
}

// restRule reads one JSON object of a REST document.
type restRule struct {
	path, field, prefix string
}

func bean(name string) func(string) bool { return func(n string) bool { return n == name } }

func beanPrefix(name string) func(string) bool {
	return func(n string) bool { return strings.HasPrefix(n, name) }
}

// The daemons, by collector kind.
var (
	NameNode = Daemon{kind: "hdfs_namenode", up: "hadoop.hdfs.NameNode.up", beans: []beanRule{
		{bean("Hadoop:service=NameNode,name=JvmMetrics"), "hadoop.hdfs.NameNode.jvm"},
		{bean("Hadoop:service=NameNode,name=FSNamesystem"), "hadoop.hdfs.NameNode.FSNamesystem"},
		{bean("Hadoop:service=NameNode,name=FSNamesystemState"), "hadoop.hdfs.NameNode.FSNamesystemState"},
		{bean("Hadoop:service=NameNode,name=NameNodeActivity"), "hadoop.hdfs.NameNode.NameNodeActivity"},
	}}
	DataNode = Daemon{kind: "hdfs_datanode", up: "hadoop.hdfs.DataNode.up", beans: []beanRule{
		{bean("Hadoop:service=DataNode,name=JvmMetrics"), "hadoop.hdfs.DataNode.jvm"},
		{beanPrefix("Hadoop:service=DataNode,name=DataNodeActivity-"), "hadoop.hdfs.DataNode.DataNodeActivity"},
		{beanPrefix("Hadoop:service=DataNode,name=FSDatasetState"), "hadoop.hdfs.DataNode.FSDatasetState"},
	}}
	HBaseMaster = Daemon{kind: "hbase_master", up: "hadoop.hbase.Master.up", beans: []beanRule{
		{bean("Hadoop:service=HBase,name=JvmMetrics"), "hadoop.hbase.Master.jvm"},
		{bean("Hadoop:service=HBase,name=Master,sub=Server"), "hadoop.hbase.Master"},
		{bean("Hadoop:service=HBase,name=Master,sub=IPC"), "hadoop.hbase.Master"},
		{bean("Hadoop:service=HBase,name=Master,sub=AssignmentManager"), "hadoop.hbase.Master"},
	}}
	RegionServer = Daemon{kind: "hbase_regionserver", up: "hadoop.hbase.RegionServer.up", beans: []beanRule{
		{bean("Hadoop:service=HBase,name=JvmMetrics"), "hadoop.hbase.RegionServer.jvm"},
		{bean("Hadoop:service=HBase,name=RegionServer,sub=Server"), "hadoop.hbase.RegionServer.RSServer"},
		{bean("Hadoop:service=HBase,name=RegionServer,sub=IPC"), "hadoop.hbase.RegionServer.RSIpc"},
		{bean("Hadoop:service=HBase,name=RegionServer,sub=WAL"), "hadoop.hbase.RegionServer.WAL"},
	}}
	ResourceManager = Daemon{kind: "yarn_resourcemanager", up: "hadoop.mapreduce.up",
		beans:   []beanRule{{bean("Hadoop:service=ResourceManager,name=JvmMetrics"), "hadoop.mapreduce.jvm"}},
		cluster: &restRule{path: "/ws/v1/cluster/metrics", field: "clusterMetrics", prefix: "hadoop.mapreduce"},
	}
)

// DefaultConfig returns the defaults documented in the example agent.yaml.
func DefaultConfig() Config { return Config{} }

// Collector reads one daemon.
type Collector struct {
	d        Daemon
	base     string
	instance string
	client   *http.Client
	now      func() time.Time
}

// New returns a collector of daemon d at cfg.URL.
func New(d Daemon, cfg Config) (*Collector, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url: want the daemon's web address such as http://host:port, got %q", cfg.URL)
	}
	return &Collector{d: d, base: strings.TrimSuffix(cfg.URL, "/"), instance: u.Host,
		client: &http.Client{}, now: time.Now}, nil
}

// Name is the collector kind.
func (c *Collector) Name() string { return c.d.kind }

// Collect reads /jmx (and the REST document of YARN) and emits every numeric
// attribute of the beans of interest; the daemon's up metric says whether it
// answered.
func (c *Collector) Collect(ctx context.Context, emit collector.Emit) error {
	w := points.Writer{Emit: emit, Time: c.now(), Tags: map[string]string{"instance": c.instance}}
	err := c.collect(ctx, w)
	up := 1.0
	if err != nil {
		up = 0
	}
	w.Add(c.d.up, up)
	return err
}

func (c *Collector) collect(ctx context.Context, w points.Writer) error {
	var doc struct {
		Beans []map[string]any `json:"beans"`
	}
	if err := httpjson.Get(ctx, c.client, c.base+"/jmx", &doc); err != nil {
		return err
	}
	matched := 0
	for _, b := range doc.Beans {
		name, _ := b["name"].(string)
		for _, r := range c.d.beans {
			if r.match(name) {
				matched++
				emitNumbers(w, r.prefix, b)
			}
		}
	}
	if matched == 0 {
		return errors.New(c.base + "/jmx has none of the beans of a " + c.d.kind + ": is the URL that of the right daemon?")
	}
	if r := c.d.cluster; r != nil {
		var doc map[string]map[string]any
		if err := httpjson.Get(ctx, c.client, c.base+r.path, &doc); err != nil {
			return err
		}
		obj, ok := doc[r.field]
		if !ok {
			return fmt.Errorf("%s%s: no %q object", c.base, r.path, r.field)
		}
		emitNumbers(w, r.prefix, obj)
	}
	return nil
}

// emitNumbers emits the numeric attributes of obj as prefix.<attribute>; tags
// ("tag.*"), strings, booleans and nested objects are not metrics.
func emitNumbers(w points.Writer, prefix string, obj map[string]any) {
	for k, v := range obj {
		if strings.HasPrefix(k, "tag.") {
			continue
		}
		if f, ok := v.(float64); ok {
			w.Add(prefix+"."+k, f)
		}
	}
}
