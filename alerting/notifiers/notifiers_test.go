package notifiers

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/amas-eye/amas/alerting"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixedNow stamps signatures and mail dates, so the golden files are stable.
var fixedNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func sampleMessage() *Message {
	m := SampleMessage("ops", fixedNow, nil)
	m.ExternalURL = "http://amas.example.com"
	return m
}

// request is what a receiver got, as written to the golden files.
type request struct {
	Method string
	Path   string
	Query  url.Values
	Header map[string]string
	Body   json.RawMessage
}

// receiver records requests and answers each with the next of answers (the last
// one repeats).
type receiver struct {
	mu      sync.Mutex
	got     []request
	answers []answer
}

type answer struct {
	status int
	body   string
}

func newReceiver(t *testing.T, answers ...answer) (*receiver, *httptest.Server) {
	t.Helper()
	if len(answers) == 0 {
		answers = []answer{{200, `{"errcode":0,"errmsg":"ok","code":0}`}}
	}
	r := &receiver{answers: answers}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var indented bytes.Buffer
		if err := json.Indent(&indented, body, "", "  "); err != nil {
			t.Errorf("%s: body is not JSON: %q", req.URL.Path, body)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		h := map[string]string{"Content-Type": req.Header.Get("Content-Type")}
		if a := req.Header.Get("Authorization"); a != "" {
			h["Authorization"] = a
		}
		r.got = append(r.got, request{Method: req.Method, Path: req.URL.Path, Query: req.URL.Query(), Header: h, Body: indented.Bytes()})
		a := r.answers[min(len(r.got), len(r.answers))-1]
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestHTTPChannelPayloads(t *testing.T) {
	for _, tc := range []struct {
		name     string
		typ      string
		settings map[string]string
		secrets  func(srvURL string) map[string]string
		urlSet   string // the setting that takes the receiver's address, when not a secret
		check    func(t *testing.T, r request)
	}{
		{
			name: "webhook", typ: "webhook",
			secrets: func(u string) map[string]string {
				return map[string]string{"url": u + "/hook", "bearer_token": "s3cret"}
			},
		},
		{
			name: "webhook_truncated", typ: "webhook", settings: map[string]string{"max_alerts": "1"},
			secrets: func(u string) map[string]string { return map[string]string{"url": u + "/hook"} },
		},
		{
			name: "slack", typ: "slack", settings: map[string]string{"channel": "#ops", "username": "amas"},
			secrets: func(u string) map[string]string { return map[string]string{"webhook_url": u + "/services/T0/B0/XX"} },
		},
		{
			name: "wechat", typ: "wechat", urlSet: "url",
			secrets: func(string) map[string]string { return map[string]string{"key": "wx-key"} },
		},
		{
			name: "dingtalk", typ: "dingtalk", urlSet: "url", settings: map[string]string{"at_mobiles": "13800000000"},
			secrets: func(string) map[string]string {
				return map[string]string{"access_token": "dt-token", "secret": "SECabc"}
			},
			check: func(t *testing.T, r request) {
				ts, err := strconv.ParseInt(r.Query.Get("timestamp"), 10, 64)
				if err != nil || ts != fixedNow.UnixMilli() {
					t.Errorf("timestamp = %q, want %d (ms)", r.Query.Get("timestamp"), fixedNow.UnixMilli())
				}
				mac := hmac.New(sha256.New, []byte("SECabc"))
				fmt.Fprintf(mac, "%d\nSECabc", ts)
				if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); r.Query.Get("sign") != want {
					t.Errorf("sign = %q, want %q", r.Query.Get("sign"), want)
				}
			},
		},
		{
			name: "feishu", typ: "feishu",
			secrets: func(u string) map[string]string {
				return map[string]string{"webhook_url": u + "/open-apis/bot/v2/hook/abc", "secret": "fs-secret"}
			},
			check: func(t *testing.T, r request) {
				var body struct{ Timestamp, Sign string }
				if err := json.Unmarshal(r.Body, &body); err != nil {
					t.Fatal(err)
				}
				mac := hmac.New(sha256.New, []byte(body.Timestamp+"\nfs-secret"))
				if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); body.Timestamp != strconv.FormatInt(fixedNow.Unix(), 10) || body.Sign != want {
					t.Errorf("timestamp, sign = %q, %q; want %d, %q", body.Timestamp, body.Sign, fixedNow.Unix(), want)
				}
			},
		},
		{
			name: "pagerduty", typ: "pagerduty", urlSet: "url", settings: map[string]string{"client_url": "http://amas.example.com"},
			secrets: func(string) map[string]string { return map[string]string{"routing_key": "pd-key"} },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, srv := newReceiver(t)
			settings := map[string]string{}
			for k, v := range tc.settings {
				settings[k] = v
			}
			if tc.urlSet != "" {
				settings[tc.urlSet] = srv.URL + "/" + tc.typ
			}
			ch := Channel{ID: 1, Name: "ops", Type: tc.typ, Settings: settings, Secrets: tc.secrets(srv.URL)}
			s, err := New(ch, Deps{HTTP: srv.Client(), Now: func() time.Time { return fixedNow }})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(context.Background(), sampleMessage()); err != nil {
				t.Fatal(err)
			}
			got := rec.requests()
			if len(got) != 1 {
				t.Fatalf("receiver got %d requests, want 1", len(got))
			}
			if tc.check != nil {
				tc.check(t, got[0])
			}
			out, err := json.MarshalIndent(got[0], "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".json", append(out, '\n'))
		})
	}
}

// TestWebhookPayloadIsAlertmanagerV4 decodes the body into the field names and
// types of Alertmanager's webhook.Message, independent of the golden file.
func TestWebhookPayloadIsAlertmanagerV4(t *testing.T) {
	rec, srv := newReceiver(t)
	s, err := New(Channel{Name: "ops", Type: "webhook", Secrets: map[string]string{"url": srv.URL}}, Deps{HTTP: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatal(err)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(rec.requests()[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"alerts", "commonAnnotations", "commonLabels", "externalURL", "groupKey", "groupLabels", "receiver", "status", "truncatedAlerts", "version"}
	if !slices.Equal(keys, want) {
		t.Errorf("body keys = %v, want %v", keys, want)
	}
	var alerts []map[string]json.RawMessage
	if err := json.Unmarshal(body["alerts"], &alerts); err != nil || len(alerts) != 2 {
		t.Fatalf("alerts = %s (%v)", body["alerts"], err)
	}
	keys = keys[:0]
	for k := range alerts[0] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"annotations", "endsAt", "fingerprint", "generatorURL", "labels", "startsAt", "status"}; !slices.Equal(keys, want) {
		t.Errorf("alert keys = %v, want %v", keys, want)
	}
	if string(body["version"]) != `"4"` {
		t.Errorf("version = %s, want \"4\"", body["version"])
	}
}

func TestFailuresRetryable(t *testing.T) {
	for _, tc := range []struct {
		name      string
		typ       string
		answer    answer
		retryable bool
	}{
		{"server error", "webhook", answer{503, "busy"}, true},
		{"rate limited", "slack", answer{429, "slow down"}, true},
		{"bad request", "webhook", answer{400, "bad"}, false},
		{"not found", "slack", answer{404, "no_service"}, false},
		{"wechat throttled", "wechat", answer{200, `{"errcode":45009,"errmsg":"api freq out of limit"}`}, true},
		{"wechat bad key", "wechat", answer{200, `{"errcode":93000,"errmsg":"invalid webhook url"}`}, false},
		{"dingtalk too fast", "dingtalk", answer{200, `{"errcode":130101,"errmsg":"send too fast"}`}, true},
		{"dingtalk bad sign", "dingtalk", answer{200, `{"errcode":310000,"errmsg":"sign not match"}`}, false},
		{"feishu throttled", "feishu", answer{200, `{"code":11232,"msg":"frequency limited"}`}, true},
		{"feishu bad sign", "feishu", answer{200, `{"code":19021,"msg":"sign match fail"}`}, false},
		{"pagerduty invalid", "pagerduty", answer{400, `{"status":"invalid event"}`}, false},
		{"pagerduty throttled", "pagerduty", answer{429, `{}`}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := newReceiver(t, tc.answer)
			ch := Channel{Name: "x", Type: tc.typ, Settings: map[string]string{}, Secrets: map[string]string{}}
			switch tc.typ {
			case "webhook":
				ch.Secrets["url"] = srv.URL
			case "slack":
				ch.Secrets["webhook_url"] = srv.URL
			case "wechat":
				ch.Settings["url"], ch.Secrets["key"] = srv.URL, "k"
			case "dingtalk":
				ch.Settings["url"], ch.Secrets["access_token"] = srv.URL, "t"
			case "feishu":
				ch.Secrets["webhook_url"] = srv.URL
			case "pagerduty":
				ch.Settings["url"], ch.Secrets["routing_key"] = srv.URL, "k"
			}
			s, err := New(ch, Deps{HTTP: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), sampleMessage())
			if err == nil {
				t.Fatal("Send succeeded against a failing receiver")
			}
			if Retryable(err) != tc.retryable {
				t.Errorf("Retryable(%v) = %v, want %v", err, Retryable(err), tc.retryable)
			}
		})
	}
}

func TestNetworkErrorRetryableAndRedacted(t *testing.T) {
	_, srv := newReceiver(t)
	u := srv.URL + "/hook?key=topsecret"
	srv.Close()
	s, err := New(Channel{Name: "x", Type: "webhook", Secrets: map[string]string{"url": u}}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), sampleMessage())
	if !Retryable(err) {
		t.Errorf("connection refused: Retryable = false (%v)", err)
	}
	if err != nil && strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error quotes the secret URL: %v", err)
	}
}

func TestPagerdutyResolve(t *testing.T) {
	rec, srv := newReceiver(t, answer{202, `{"status":"success"}`})
	s, err := New(Channel{Name: "pd", Type: "pagerduty", Settings: map[string]string{"url": srv.URL}, Secrets: map[string]string{"routing_key": "k"}}, Deps{HTTP: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	a := alerting.Alert{Labels: alerting.Labels{"alertname": "Down"}, State: alerting.StateResolved, Fingerprint: "f1"}
	msg := NewMessage("pd", `{}:{alertname="Down"}`, "", alerting.Labels{"alertname": "Down"}, []alerting.Alert{a}, nil)
	if err := s.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	var ev struct {
		EventAction string          `json:"event_action"`
		DedupKey    string          `json:"dedup_key"`
		Payload     json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(rec.requests()[0].Body, &ev); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(`{}:{alertname="Down"}`))
	if ev.EventAction != "resolve" || ev.DedupKey != fmt.Sprintf("%x", sum) || ev.Payload != nil {
		t.Errorf("resolve event = %+v, want event_action resolve, dedup_key sha256 of the group key, no payload", ev)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		ch   Channel
		want string
	}{
		{"unknown type", Channel{Name: "a", Type: "fax"}, `channel type "fax" is unknown`},
		{"no name", Channel{Type: "webhook", Secrets: map[string]string{"url": "http://x"}}, "channel name is required"},
		{"missing required", Channel{Name: "a", Type: "slack"}, `setting "webhook_url" is required`},
		{"unknown setting", Channel{Name: "a", Type: "webhook", Settings: map[string]string{"colour": "red"}, Secrets: map[string]string{"url": "http://x"}}, `unknown setting "colour"`},
		{"secret as setting", Channel{Name: "a", Type: "webhook", Settings: map[string]string{"url": "http://x"}}, `"url" is a secret`},
		{"setting as secret", Channel{Name: "a", Type: "webhook", Secrets: map[string]string{"url": "http://x", "max_alerts": "2"}}, `"max_alerts" is not a secret`},
		{"bad url", Channel{Name: "a", Type: "webhook", Secrets: map[string]string{"url": "ftp://x"}}, "url must be an http:// or https:// URL"},
		{"bad max_alerts", Channel{Name: "a", Type: "webhook", Settings: map[string]string{"max_alerts": "-1"}, Secrets: map[string]string{"url": "http://x"}}, "max_alerts"},
		{"bad template", Channel{Name: "a", Type: "slack", Secrets: map[string]string{"webhook_url": "https://x"}, Template: "{{.Nope"}, "template"},
		{"bad smarthost", Channel{Name: "a", Type: "email", Settings: map[string]string{"smarthost": "mail", "from": "a@b.c", "to": "d@e.f"}}, `smarthost "mail" must be host:port`},
		{"bad tls mode", Channel{Name: "a", Type: "email", Settings: map[string]string{"smarthost": "mail:25", "from": "a@b.c", "to": "d@e.f", "tls": "maybe"}}, "tls \"maybe\""},
		{"user without password", Channel{Name: "a", Type: "email", Settings: map[string]string{"smarthost": "mail:25", "from": "a@b.c", "to": "d@e.f", "username": "u"}}, "password is required"},
		{"dingtalk at_all", Channel{Name: "a", Type: "dingtalk", Settings: map[string]string{"at_all": "sure"}, Secrets: map[string]string{"access_token": "t"}}, "at_all"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.ch)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	ok := Channel{Name: "a", Type: "webhook", Secrets: map[string]string{"url": "https://example.com/x"}}
	if err := Validate(ok); err != nil {
		t.Errorf("Validate(valid webhook) = %v", err)
	}
}

func TestPreview(t *testing.T) {
	for _, typ := range Types() {
		if typ.DefaultTemplate == "" {
			continue
		}
		t.Run(typ.Name, func(t *testing.T) {
			r, err := Preview(typ.Name, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			out := "title: " + r.Title + "\n--- text\n" + r.Text + "\n"
			if r.HTML != "" {
				out += "--- html\n" + r.HTML + "\n"
			}
			golden(t, "preview_"+typ.Name+".txt", []byte(out))
		})
	}
	t.Run("custom message keeps default title", func(t *testing.T) {
		r, err := Preview("slack", `{{define "message"}}{{len .Alerts}} alerts, {{len .Firing}} firing{{end}}`, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Text != "2 alerts, 1 firing" || r.Title != "[FIRING:1] HighCPU" {
			t.Errorf("preview = %+v", r)
		}
	})
	t.Run("html escapes", func(t *testing.T) {
		msg := sampleMessage()
		msg.Alerts[0].Annotations["summary"] = "<script>x</script>"
		r, err := Preview("email", "", msg)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(r.HTML, "<script>") || !strings.Contains(r.HTML, "&lt;script&gt;") {
			t.Errorf("HTML part does not escape annotations: %s", r.HTML)
		}
	})
	t.Run("errors", func(t *testing.T) {
		if _, err := Preview("slack", "{{.Missing.Field | nosuchfunc}}", nil); err == nil || !strings.Contains(err.Error(), "nosuchfunc") {
			t.Errorf("unknown function: err = %v", err)
		}
		if _, err := Preview("slack", `{{define "message"}}{{.NoSuchField}}{{end}}`, nil); err == nil || !strings.Contains(err.Error(), "NoSuchField") {
			t.Errorf("unknown field: err = %v", err)
		}
		if _, err := Preview("fax", "", nil); err == nil {
			t.Error("unknown type: no error")
		}
	})
}
