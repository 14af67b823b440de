package hadoop

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/amas-eye/amas/collector/builtin/internal/pointtest"
)

// serve answers each path with the testdata file given for it, 404 otherwise.
func serve(t *testing.T, files map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestDaemons(t *testing.T) {
	for _, tc := range []struct {
		daemon Daemon
		files  map[string]string
		want   map[string]float64 // metric (tags: instance) -> value
		absent []string
	}{
		{NameNode, map[string]string{"/jmx": "namenode-jmx.json"}, map[string]float64{
			"hadoop.hdfs.NameNode.jvm.MemHeapUsedM":                      412.6,
			"hadoop.hdfs.NameNode.jvm.GcTimeMillisConcurrentMarkSweep":   141,
			"hadoop.hdfs.NameNode.jvm.LogError":                          2,
			"hadoop.hdfs.NameNode.FSNamesystem.CorruptBlocks":            1,
			"hadoop.hdfs.NameNode.FSNamesystem.CapacityRemaining":        121018310656,
			"hadoop.hdfs.NameNode.FSNamesystem.Snapshots":                4,
			"hadoop.hdfs.NameNode.FSNamesystemState.NumLiveDataNodes":    3,
			"hadoop.hdfs.NameNode.FSNamesystemState.NumDeadDataNodes":    1,
			"hadoop.hdfs.NameNode.FSNamesystemState.VolumeFailuresTotal": 0,
			"hadoop.hdfs.NameNode.NameNodeActivity.SyncsAvgTime":         1.2,
			"hadoop.hdfs.NameNode.up":                                    1,
		}, []string{"hadoop.hdfs.NameNode.FSNamesystemState.FSState", "hadoop.hdfs.NameNode.jvm.tag.Hostname", "hadoop.hdfs.NameNode.RpcActivityForPort8020.ReceivedBytes"}},
		{DataNode, map[string]string{"/jmx": "datanode-jmx.json"}, map[string]float64{
			"hadoop.hdfs.DataNode.jvm.GcCount":                                88,
			"hadoop.hdfs.DataNode.DataNodeActivity.BlockVerificationFailures": 0,
			"hadoop.hdfs.DataNode.DataNodeActivity.HeartbeatsAvgTime":         1,
			"hadoop.hdfs.DataNode.DataNodeActivity.DatanodeNetworkErrors":     2,
			"hadoop.hdfs.DataNode.DataNodeActivity.ReplaceBlockOpNumOps":      4,
			"hadoop.hdfs.DataNode.FSDatasetState.Remaining":                   40339436544,
			"hadoop.hdfs.DataNode.up":                                         1,
		}, []string{"hadoop.hdfs.DataNode.FSDatasetState.StorageInfo"}},
		{HBaseMaster, map[string]string{"/jmx": "hbase-master-jmx.json"}, map[string]float64{
			"hadoop.hbase.Master.jvm.LogWarn":                     12,
			"hadoop.hbase.Master.averageLoad":                     12.5,
			"hadoop.hbase.Master.numRegionServers":                2,
			"hadoop.hbase.Master.numDeadRegionServers":            0,
			"hadoop.hbase.Master.clusterRequests":                 1893211,
			"hadoop.hbase.Master.numOpenConnections":              4,
			"hadoop.hbase.Master.exceptions.RegionMovedException": 0,
			"hadoop.hbase.Master.ProcessCallTime_mean":            0.4,
			"hadoop.hbase.Master.ritCount":                        0,
			"hadoop.hbase.Master.BulkAssign_mean":                 1200,
			"hadoop.hbase.Master.up":                              1,
		}, []string{"hadoop.hbase.Master.tag.liveRegionServers"}},
		{RegionServer, map[string]string{"/jmx": "hbase-regionserver-jmx.json"}, map[string]float64{
			"hadoop.hbase.RegionServer.jvm.ThreadsWaiting":                       120,
			"hadoop.hbase.RegionServer.RSServer.regionCount":                     25,
			"hadoop.hbase.RegionServer.RSServer.totalRequestCount":               9912003,
			"hadoop.hbase.RegionServer.RSServer.percentFilesLocal":               98.5,
			"hadoop.hbase.RegionServer.RSServer.Get_mean":                        0.7,
			"hadoop.hbase.RegionServer.RSIpc.numActiveHandler":                   2,
			"hadoop.hbase.RegionServer.RSIpc.exceptions.UnknownScannerException": 0,
			"hadoop.hbase.RegionServer.WAL.SyncTime_mean":                        2.2,
			"hadoop.hbase.RegionServer.up":                                       1,
		}, nil},
		{ResourceManager, map[string]string{"/jmx": "rm-jmx.json", "/ws/v1/cluster/metrics": "rm-cluster-metrics.json"}, map[string]float64{
			"hadoop.mapreduce.appsSubmitted":         120,
			"hadoop.mapreduce.appsFailed":            5,
			"hadoop.mapreduce.availableMB":           40960,
			"hadoop.mapreduce.allocatedVirtualCores": 4,
			"hadoop.mapreduce.containersAllocated":   4,
			"hadoop.mapreduce.totalMB":               49152,
			"hadoop.mapreduce.jvm.MemHeapUsedM":      310.9,
			"hadoop.mapreduce.up":                    1,
		}, []string{"hadoop.mapreduce.AppsRunning"}},
	} {
		t.Run(tc.daemon.kind, func(t *testing.T) {
			srv := serve(t, tc.files)
			c, err := New(tc.daemon, Config{URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			var sink pointtest.Sink
			if err := c.Collect(context.Background(), sink.Emit); err != nil {
				t.Fatal(err)
			}
			got := sink.Index()
			instance := instanceTag(srv.URL)
			for metric, want := range tc.want {
				key := pointtest.Key(metric, pointtest.Tags("instance", instance))
				if v, ok := got[key]; !ok || v != want {
					t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
				}
			}
			for _, metric := range tc.absent {
				for key := range got {
					if strings.HasPrefix(key, metric+"{") {
						t.Errorf("%s should not be a metric", key)
					}
				}
			}
		})
	}
}

func TestDaemonDown(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		files      map[string]string
	}{
		{"jmx fails", "status 404", map[string]string{}},
		{"another daemon's jmx", "has none of the beans of a hdfs_datanode", map[string]string{"/jmx": "namenode-jmx.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, tc.files)
			c, err := New(DataNode, Config{URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			var sink pointtest.Sink
			err = c.Collect(context.Background(), sink.Emit)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			key := pointtest.Key("hadoop.hdfs.DataNode.up", pointtest.Tags("instance", instanceTag(srv.URL)))
			if v, ok := sink.Index()[key]; !ok || v != 0 {
				t.Errorf("%s = %v (present %v), want 0", key, v, ok)
			}
		})
	}
}

func TestNewRefusesBadURL(t *testing.T) {
	for _, u := range []string{"", "namenode:9870", "ftp://x:1"} {
		if _, err := New(NameNode, Config{URL: u}); err == nil || !strings.Contains(err.Error(), "url:") {
			t.Errorf("url %q: %v", u, err)
		}
	}
}

// instanceTag is the instance tag of a daemon at url: its host:port with the
// colon, which tags may not hold, made an underscore.
func instanceTag(url string) string {
	return strings.ReplaceAll(strings.TrimPrefix(url, "http://"), ":", "_")
}
