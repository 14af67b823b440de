package dispatch

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/amas-eye/amas/alerting"
)

// Defaults of the root route, as in Alertmanager.
const (
	DefaultGroupWait      = 30 * time.Second
	DefaultGroupInterval  = 5 * time.Minute
	DefaultRepeatInterval = 4 * time.Hour
)

// GroupByAll in GroupBy groups by every label: each alert instance is a group of
// its own.
const GroupByAll = "..."

// Route is one node of the routing tree, as edited and stored. An alert enters at
// the root and descends into the first child whose matchers all hold (and, when
// that child has Continue, into the next matching siblings too); the deepest
// routes it reaches are where it is grouped and sent. Unset options are inherited
// from the parent: GroupBy nil inherits (an empty list means one group for the
// route), a nil duration inherits.
type Route struct {
	Matchers       alerting.Matchers `json:"matchers,omitempty"`
	Channels       []int64           `json:"channels,omitempty"`
	GroupBy        []string          `json:"group_by"`
	GroupWait      *time.Duration    `json:"group_wait,omitempty"`
	GroupInterval  *time.Duration    `json:"group_interval,omitempty"`
	RepeatInterval *time.Duration    `json:"repeat_interval,omitempty"`
	Continue       bool              `json:"continue,omitempty"`
	Routes         []Route           `json:"routes,omitempty"`
}

// DefaultRoute is the tree before anyone edits it: one root that groups by
// alertname and sends nowhere.
func DefaultRoute() Route { return Route{GroupBy: []string{"alertname"}} }

// RouteOpts are a route's effective settings, inheritance applied.
type RouteOpts struct {
	Channels       []int64
	GroupBy        []string // sorted; ignored when GroupByAll
	GroupByAll     bool
	GroupWait      time.Duration
	GroupInterval  time.Duration
	RepeatInterval time.Duration
}

// Node is a compiled route.
type Node struct {
	// Key identifies the route by its matchers path, stable when siblings are
	// reordered, so that group keys (and the notification log) survive edits.
	Key      string
	Matchers alerting.Matchers
	Opts     RouteOpts
	Continue bool
	Children []*Node
}

// Tree is a compiled routing tree.
type Tree struct{ Root *Node }

// Compile checks a routing tree and applies inheritance. Errors name the route
// by its path of child indices (root, root.routes[1], ...).
func Compile(root Route) (*Tree, error) {
	if len(root.Matchers) > 0 {
		return nil, fmt.Errorf("root route: must not have matchers (it receives every alert)")
	}
	if root.Continue {
		return nil, fmt.Errorf("root route: continue has no meaning on the root")
	}
	defaults := RouteOpts{GroupWait: DefaultGroupWait, GroupInterval: DefaultGroupInterval, RepeatInterval: DefaultRepeatInterval}
	n, err := compile(root, defaults, "", "root")
	if err != nil {
		return nil, err
	}
	return &Tree{Root: n}, nil
}

func compile(r Route, parent RouteOpts, parentKey, path string) (*Node, error) {
	if err := r.Matchers.Compile(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	opts := parent
	opts.Channels = slices.Clone(r.Channels)
	if r.GroupBy != nil {
		opts.GroupBy, opts.GroupByAll = nil, false
		for _, l := range r.GroupBy {
			switch {
			case l == GroupByAll && len(r.GroupBy) == 1:
				opts.GroupByAll = true
			case l == GroupByAll:
				return nil, fmt.Errorf("%s: group_by %q must be alone", path, GroupByAll)
			case !alerting.ValidLabelName(l):
				return nil, fmt.Errorf("%s: group_by label %q is not a valid label name", path, l)
			default:
				opts.GroupBy = append(opts.GroupBy, l)
			}
		}
		slices.Sort(opts.GroupBy)
		opts.GroupBy = slices.Compact(opts.GroupBy)
	}
	for _, d := range []struct {
		name     string
		v        *time.Duration
		into     *time.Duration
		zeroOkay bool
	}{
		{"group_wait", r.GroupWait, &opts.GroupWait, true},
		{"group_interval", r.GroupInterval, &opts.GroupInterval, false},
		{"repeat_interval", r.RepeatInterval, &opts.RepeatInterval, false},
	} {
		if d.v == nil {
			continue
		}
		if *d.v < 0 || (*d.v == 0 && !d.zeroOkay) {
			return nil, fmt.Errorf("%s: %s %s must be positive", path, d.name, *d.v)
		}
		*d.into = *d.v
	}
	n := &Node{Key: parentKey + "/" + r.Matchers.String(), Matchers: r.Matchers, Opts: opts, Continue: r.Continue}
	if parentKey == "" {
		n.Key = r.Matchers.String()
	}
	seen := map[string]int{}
	for i, child := range r.Routes {
		c, err := compile(child, opts, n.Key, path+".routes["+strconv.Itoa(i)+"]")
		if err != nil {
			return nil, err
		}
		// Siblings with the same matchers keep distinct keys by their rank among
		// themselves.
		if k := seen[c.Key]; k > 0 {
			c.rekey(c.Key + "#" + strconv.Itoa(k))
		}
		seen[c.Key]++
		n.Children = append(n.Children, c)
	}
	return n, nil
}

func (n *Node) rekey(key string) {
	old := n.Key
	n.Key = key
	for _, c := range n.Children {
		c.rekey(key + c.Key[len(old):])
	}
}

// Match returns the routes an alert with labels is handled by, in tree order.
func (t *Tree) Match(labels alerting.Labels) []*Node { return t.Root.match(labels) }

func (n *Node) match(labels alerting.Labels) []*Node {
	if !n.Matchers.Matches(labels) {
		return nil
	}
	var all []*Node
	for _, c := range n.Children {
		m := c.match(labels)
		all = append(all, m...)
		if m != nil && !c.Continue {
			break
		}
	}
	if len(all) == 0 {
		all = append(all, n)
	}
	return all
}

// groupLabels are the labels of an alert that pick its group on route n.
func (n *Node) groupLabels(labels alerting.Labels) alerting.Labels {
	out := alerting.Labels{}
	if n.Opts.GroupByAll {
		for k, v := range labels {
			out[k] = v
		}
		return out
	}
	for _, k := range n.Opts.GroupBy {
		if v, ok := labels[k]; ok {
			out[k] = v
		}
	}
	return out
}

// GroupKey names the aggregation group of labels on route n: the route's key and
// the group labels, as Alertmanager's groupKey.
func (n *Node) GroupKey(labels alerting.Labels) string {
	return n.Key + ":" + n.groupLabels(labels).String()
}
