package notifiers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// maxErrorBody is how much of a failed answer's body an error quotes.
const maxErrorBody = 512

// postJSON sends body as JSON to u and returns the answer's body when the status
// is 2xx. Network errors, 5xx and 429 answers are retryable; other statuses are
// not. The error never quotes u, whose query often carries a secret key.
func postJSON(ctx context.Context, client *http.Client, u string, body any, header http.Header) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode body: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", redactURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "amas-notifier")
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, Retry(fmt.Errorf("post: %w", redactURL(err)))
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, Retry(fmt.Errorf("read answer: %w", err))
	}
	if resp.StatusCode/100 == 2 {
		return answer, nil
	}
	err = fmt.Errorf("answer %s: %s", resp.Status, quote(answer))
	if resp.StatusCode/100 == 5 || resp.StatusCode == http.StatusTooManyRequests {
		return nil, Retry(err)
	}
	return nil, err
}

// redactURL drops the URL from a *url.Error, keeping what went wrong.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

func quote(b []byte) string {
	if len(b) > maxErrorBody {
		b = append(b[:maxErrorBody:maxErrorBody], "…"...)
	}
	return fmt.Sprintf("%q", b)
}

// robotAnswer is the JSON reply of the WeChat Work and DingTalk robots.
type robotAnswer struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// checkRobot reads a robot's answer; a 200 may still carry an error code.
// throttled are the codes meaning "too many messages", worth a retry.
func checkRobot(answer []byte, throttled ...int) error {
	var a robotAnswer
	if err := json.Unmarshal(answer, &a); err != nil {
		return fmt.Errorf("answer is not the robot's JSON: %s", quote(answer))
	}
	if a.ErrCode == 0 {
		return nil
	}
	err := fmt.Errorf("robot refused the message: errcode %d: %s", a.ErrCode, a.ErrMsg)
	for _, c := range throttled {
		if a.ErrCode == c {
			return Retry(err)
		}
	}
	return err
}
