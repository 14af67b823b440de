package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/amas-eye/amas/app"
	"github.com/amas-eye/amas/store"
)

// The three paths write the same shape of data: every series has a point at each
// timestamp, sent timestamp by timestamp as agents do, each path into its own day
// so every path starts on empty partitions of the same table definition.

func hostTag(i int) string { return fmt.Sprintf("h%04d", i) }

// copyTable mirrors the plain-PostgreSQL samples table: partitioned by day, same
// columns, same index.
const copyTable = `
CREATE TABLE bench_copy (time timestamptz NOT NULL, series_id bigint NOT NULL, value double precision NOT NULL)
    PARTITION BY RANGE (time);
CREATE INDEX bench_copy_series_time ON bench_copy (series_id, time);
CREATE TABLE bench_copy_p PARTITION OF bench_copy FOR VALUES FROM ('%s') TO ('%s');`

func benchCopy(ctx context.Context, a *app.App, o options, day time.Time) (float64, error) {
	st := a.Store().Store
	ddl := fmt.Sprintf(copyTable, day.Format(time.RFC3339), day.AddDate(0, 0, 1).Format(time.RFC3339))
	if _, err := st.Pool().Exec(ctx, ddl); err != nil {
		return 0, err
	}
	refs := make([]store.SeriesRef, o.series)
	for i := range refs {
		refs[i] = store.SeriesRef{Metric: "bench.copy", Tags: map[string]string{"host": hostTag(i), "dc": "eu1"}}
	}
	ids, err := st.ResolveSeries(ctx, refs)
	if err != nil {
		return 0, err
	}
	perSeries := int(o.span / o.step)
	rows := make([][]any, 0, o.series*perSeries)
	for k := range perSeries {
		t := day.Add(time.Duration(k) * o.step)
		for i := range o.series {
			rows = append(rows, []any{t, ids[i], float64(k % 100)})
		}
	}
	// The pipeline's batch size and writer count, so the limit is measured under
	// the same batching.
	const batch, writers = 20_000, 2
	start := time.Now()
	var g errgroup.Group
	for w := range writers {
		g.Go(func() error {
			for lo := w * batch; lo < len(rows); lo += writers * batch {
				hi := min(lo+batch, len(rows))
				_, err := st.Pool().CopyFrom(ctx, pgx.Identifier{"bench_copy"}, []string{"time", "series_id", "value"},
					pgx.CopyFromRows(rows[lo:hi]))
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return float64(len(rows)) / time.Since(start).Seconds(), nil
}

func benchHTTP(ctx context.Context, a *app.App, o options, day time.Time) (float64, error) {
	token := a.Bootstrap.IngestToken
	perSeries := int(o.span / o.step)
	var bodies [][]byte
	var buf bytes.Buffer
	n := 0
	flush := func() {
		if n == 0 {
			return
		}
		buf.WriteByte(']')
		bodies = append(bodies, bytes.Clone(buf.Bytes()))
		buf.Reset()
		n = 0
	}
	for k := range perSeries {
		ts := strconv.FormatInt(day.Add(time.Duration(k)*o.step).Unix(), 10)
		for i := range o.series {
			if n == 0 {
				buf.WriteByte('[')
			} else {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, `{"metric":"bench.http","timestamp":%s,"value":%d,"tags":{"host":"%s","dc":"eu1"}}`, ts, k%100, hostTag(i))
			if n++; n == o.httpBatch {
				flush()
			}
		}
	}
	flush()
	url := "http://" + a.HTTPAddr() + "/api/put"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.httpClients}}
	work := make(chan []byte)
	start := time.Now()
	var g errgroup.Group
	for range o.httpClients {
		g.Go(func() error {
			for body := range work {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					return fmt.Errorf("/api/put answered %s", resp.Status)
				}
			}
			return nil
		})
	}
	for _, b := range bodies {
		work <- b
	}
	close(work)
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return float64(o.series*perSeries) / time.Since(start).Seconds(), nil
}

func benchTCP(ctx context.Context, a *app.App, o options, day time.Time) (float64, error) {
	perSeries := int(o.span / o.step)
	payloads := make([]bytes.Buffer, o.tcpConns)
	for k := range perSeries {
		ts := strconv.FormatInt(day.Add(time.Duration(k)*o.step).Unix(), 10)
		b := &payloads[k%o.tcpConns]
		for i := range o.series {
			fmt.Fprintf(b, "put bench.tcp %s %d host=%s dc=eu1\n", ts, k%100, hostTag(i))
		}
	}
	before, err := committed(ctx, a)
	if err != nil {
		return 0, err
	}
	total := o.series * perSeries
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, o.tcpConns)
	for c := range o.tcpConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", a.PutAddr())
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			w := bufio.NewWriterSize(conn, 1<<20)
			if _, err := w.Write(payloads[c].Bytes()); err != nil {
				errs <- err
				return
			}
			if err := w.Flush(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return 0, err
	}
	// Telnet put has no acknowledgement: the clock stops when the server has
	// committed every point, read from its own counter.
	for {
		n, err := committed(ctx, a)
		if err != nil {
			return 0, err
		}
		if n-before >= float64(total) {
			return float64(total) / time.Since(start).Seconds(), nil
		}
		if time.Since(start) > 10*time.Minute {
			return 0, fmt.Errorf("only %.0f of %d points committed after 10 minutes", n-before, total)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// committed reads amas_ingest_points_committed_total from the server's /metrics.
func committed(ctx context.Context, a *app.App) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.HTTPAddr()+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "amas_ingest_points_committed_total "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("amas_ingest_points_committed_total not in /metrics")
}
