package registry

import (
	"github.com/amas-eye/amas/collector/builtin/hadoop"
	"github.com/amas-eye/amas/collector/builtin/hive"
	"github.com/amas-eye/amas/collector/builtin/impala"
	"github.com/amas-eye/amas/collector/builtin/kafka"
	"github.com/amas-eye/amas/collector/builtin/spark"
)

// bigDataKinds are the big-data platform collectors.
var bigDataKinds = map[string]Builder{
	"hdfs_namenode":        hadoopDaemon(hadoop.NameNode),
	"hdfs_datanode":        hadoopDaemon(hadoop.DataNode),
	"hbase_master":         hadoopDaemon(hadoop.HBaseMaster),
	"hbase_regionserver":   hadoopDaemon(hadoop.RegionServer),
	"yarn_resourcemanager": hadoopDaemon(hadoop.ResourceManager),
	"kafka":                withConfig(kafka.DefaultConfig, kafka.New),
	"spark":                withConfig(spark.DefaultConfig, spark.New),
	"impala":               withConfig(impala.DefaultConfig, impala.New),
	"hive":                 withConfig(hive.DefaultConfig, hive.New),
}

func hadoopDaemon(d hadoop.Daemon) Builder {
	return withConfig(hadoop.DefaultConfig, func(cfg hadoop.Config) (*hadoop.Collector, error) { return hadoop.New(d, cfg) })
}
