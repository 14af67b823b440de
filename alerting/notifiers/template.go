package notifiers

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// A channel's template is Go text/template source defining named templates over
// a Message: "title" (a subject or heading) and "message" (the body, in the
// channel's markup); email also renders "html" with html/template's escaping.
// A channel's template may define only some of them: the others come from the
// type's default.

// Rendered is a message as a channel shows it.
type Rendered struct {
	Title string
	Text  string
	HTML  string // email only
}

var templateFuncs = map[string]any{
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"join":  func(sep string, s []string) string { return strings.Join(s, sep) },
	// pairs renders a label or annotation map as k=v, k=v sorted by key.
	"pairs": func(m map[string]string) string {
		parts := make([]string, 0, len(m))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			parts = append(parts, k+"="+m[k])
		}
		return strings.Join(parts, ", ")
	},
	"sortedKeys": func(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) },
	"timeFmt":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 MST") },
	"value":      func(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) },
	"truncate": func(n int, s string) string {
		if r := []rune(s); len(r) > n {
			return string(r[:n]) + "…"
		}
		return s
	},
}

func parseTemplate(src string) (*template.Template, error) {
	t, err := template.New("channel").Option("missingkey=zero").Funcs(templateFuncs).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	return t, nil
}

// Render executes a channel's template (or the default of its type, for the
// templates it leaves out) over msg.
func Render(typeName, src string, msg *Message) (Rendered, error) {
	t, ok := TypeByName(typeName)
	if !ok {
		return Rendered{}, fmt.Errorf("channel type %q is unknown", typeName)
	}
	if t.DefaultTemplate == "" && src == "" {
		return Rendered{}, nil
	}
	tt, err := parseTemplate(t.DefaultTemplate)
	if err != nil {
		return Rendered{}, fmt.Errorf("default %s template: %w", t.Name, err)
	}
	if src != "" {
		if tt, err = tt.Parse(src); err != nil {
			return Rendered{}, fmt.Errorf("template: %w", err)
		}
	}
	var out Rendered
	if out.Title, err = execText(tt, "title", msg); err != nil {
		return Rendered{}, err
	}
	if out.Text, err = execText(tt, "message", msg); err != nil {
		return Rendered{}, err
	}
	if t.Name == emailType.Name {
		if out.HTML, err = execHTML(t.DefaultTemplate, src, msg); err != nil {
			return Rendered{}, err
		}
	}
	return out, nil
}

func execText(t *template.Template, name string, msg *Message) (string, error) {
	if t.Lookup(name) == nil {
		return "", fmt.Errorf("template: %q is not defined", name)
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, msg); err != nil {
		return "", fmt.Errorf("template %q: %w", name, err)
	}
	return strings.TrimSpace(b.String()), nil
}

func execHTML(def, src string, msg *Message) (string, error) {
	t, err := htmltemplate.New("channel").Option("missingkey=zero").Funcs(templateFuncs).Parse(def)
	if err != nil {
		return "", fmt.Errorf("default email template: %w", err)
	}
	if src != "" {
		if t, err = t.Parse(src); err != nil {
			return "", fmt.Errorf("template: %w", err)
		}
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "html", msg); err != nil {
		return "", fmt.Errorf("template \"html\": %w", err)
	}
	return strings.TrimSpace(b.String()), nil
}

// Preview renders a template for a channel type over the sample message, or
// over msg when it is not nil: what the template editor shows.
func Preview(typeName, src string, msg *Message) (Rendered, error) {
	if msg == nil {
		msg = SampleMessage("preview", time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), nil)
	}
	return Render(typeName, src, msg)
}
