package engine

import (
	"slices"
	"strings"
	"time"

	"github.com/amas-eye/amas/store"
)

const (
	// minMerge is the least number of queries that share a shape before they are
	// merged: a merged query scans every series of the metric for the tag, which
	// pays off only when it replaces many.
	minMerge = 8
	// maxMergeValues bounds the values of one merged query, so the merged
	// queries still spread over the store's connections.
	maxMergeValues = 1000
)

// member is one original query inside a merged one.
type member struct {
	idx     int    // position in the original queries
	value   string // its value of the merged tag
	dropTag bool   // the merged tag is not among its group-by tags
}

// merged is one query standing for several.
type merged struct {
	q       store.WindowQuery
	members []member // nil: the query is an original one, at position idx
	idx     int
}

// mergeQueries folds the queries that differ only in the value of one equality
// filter (the first by key, such as host="db-1" against host="db-2") into one
// query per shape, grouped by that tag: ten thousand per-host rules become a few
// statements. The others are passed through.
func mergeQueries(qs []store.WindowQuery) []merged {
	type shape struct {
		key     string
		tag     string
		members []member
	}
	byShape := map[string]*shape{}
	var order []string
	var out []merged
	for i, q := range qs {
		key, tag, value, ok := shapeOf(q)
		if !ok {
			out = append(out, merged{q: q, idx: i})
			continue
		}
		sh := byShape[key]
		if sh == nil {
			sh = &shape{key: key, tag: tag}
			byShape[key] = sh
			order = append(order, key)
		}
		sh.members = append(sh.members, member{idx: i, value: value, dropTag: !slices.Contains(q.GroupBy, tag)})
	}
	for _, key := range order {
		sh := byShape[key]
		if len(sh.members) < minMerge {
			for _, m := range sh.members {
				out = append(out, merged{q: qs[m.idx], idx: m.idx})
			}
			continue
		}
		for lo := 0; lo < len(sh.members); lo += maxMergeValues {
			part := sh.members[lo:min(lo+maxMergeValues, len(sh.members))]
			out = append(out, merged{q: mergedQuery(qs[part[0].idx], sh.tag, part), members: part})
		}
	}
	return out
}

// shapeOf is the query without its merge tag's value: everything else must be
// equal for two queries to merge.
func shapeOf(q store.WindowQuery) (key, tag, value string, ok bool) {
	if q.In != nil {
		return "", "", "", false
	}
	pick := -1
	for i, f := range q.Filters {
		if f.Op == store.OpEQ && (pick < 0 || f.Key < q.Filters[pick].Key) {
			pick = i
		}
	}
	if pick < 0 {
		return "", "", "", false
	}
	var b strings.Builder
	b.WriteString(q.Metric)
	b.WriteByte(0)
	b.WriteString(string(q.Reducer))
	b.WriteByte(0)
	b.WriteString(q.From.Format(time.RFC3339Nano))
	b.WriteByte(0)
	b.WriteString(q.To.Format(time.RFC3339Nano))
	b.WriteByte(0)
	b.WriteString(strings.Join(q.GroupBy, "\x01"))
	b.WriteByte(0)
	b.WriteString(q.Filters[pick].Key)
	others := make([]string, 0, len(q.Filters)-1)
	for i, f := range q.Filters {
		if i != pick {
			others = append(others, f.Key+"\x01"+string(f.Op)+"\x01"+f.Value)
		}
	}
	slices.Sort(others)
	for _, o := range others {
		b.WriteByte(0)
		b.WriteString(o)
	}
	return b.String(), q.Filters[pick].Key, q.Filters[pick].Value, true
}

func mergedQuery(first store.WindowQuery, tag string, members []member) store.WindowQuery {
	q := first
	q.Filters = nil
	for _, f := range first.Filters {
		if !(f.Op == store.OpEQ && f.Key == tag) {
			q.Filters = append(q.Filters, f)
		}
	}
	values := make([]string, len(members))
	for i, m := range members {
		values[i] = m.value
	}
	q.In = &store.TagIn{Key: tag, Values: values}
	if !slices.Contains(q.GroupBy, tag) {
		q.GroupBy = append(slices.Clone(q.GroupBy), tag)
	}
	return q
}

// split hands the answers of the merged queries back to the original positions.
func split(ms []merged, answers []store.WindowResult, n int) []store.WindowResult {
	out := make([]store.WindowResult, n)
	for i, m := range ms {
		a := answers[i]
		if m.members == nil {
			out[m.idx] = a
			continue
		}
		byValue := map[string][]store.WindowGroup{}
		tag := m.q.In.Key
		for _, g := range a.Groups {
			byValue[g.Tags[tag]] = append(byValue[g.Tags[tag]], g)
		}
		for _, mem := range m.members {
			if a.Err != nil {
				out[mem.idx].Err = a.Err
				continue
			}
			groups := byValue[mem.value]
			if mem.dropTag {
				groups = withoutTag(groups, tag)
			}
			out[mem.idx].Groups = groups
		}
	}
	return out
}

func withoutTag(groups []store.WindowGroup, tag string) []store.WindowGroup {
	out := make([]store.WindowGroup, len(groups))
	for i, g := range groups {
		tags := make(map[string]string, len(g.Tags))
		for k, v := range g.Tags {
			if k != tag {
				tags[k] = v
			}
		}
		g.Tags = tags
		out[i] = g
	}
	return out
}
