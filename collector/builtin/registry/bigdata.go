package registry

// bigDataKinds are the Hadoop-family, Kafka, Spark, Impala and Hive collectors.
var bigDataKinds = map[string]Builder{}
