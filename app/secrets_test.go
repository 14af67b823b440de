package app_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amas-eye/amas/auth"
)

// TestChannelSecretsSealedAtRest: with --secret-key-file, a channel created
// through GraphQL keeps its secrets sealed in the database and still sends; a
// replica with another key refuses to send it or to save it over secrets it
// cannot read, and says why; a replica given the old key as a previous one
// seals it again with its own.
func TestChannelSecretsSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	keyFile := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	s := startServer(t, "--roles", "api", "--secret-key-file", keyFile("a", "the key of replica set A"))
	editorOf := func(s *server) string {
		svc := auth.NewService(s.Store().Store, auth.Options{}, slog.New(slog.DiscardHandler))
		tok, err := svc.CreateToken(context.Background(), "editor-"+strings.ReplaceAll(s.HTTPAddr(), ":", "-"), auth.RoleEditor)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	editor := editorOf(s)
	hook := newWebhookReceiver(t)
	secretURL := hook.srv.URL + "/hook?key=top-secret"

	var created struct{ CreateChannel struct{ ID string } }
	mustData(t, s.graphql(t, editor, `mutation($in: ChannelInput!) { createChannel(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"name": "ops", "type": "webhook", "secrets": []map[string]any{{"key": "url", "value": secretURL}}}}), &created)
	id := created.CreateChannel.ID

	var dump string
	if err := s.Store().Store.Pool().QueryRow(context.Background(),
		`SELECT secrets::text || coalesce(encode(secrets_sealed, 'escape'), '<plain>') FROM notify_channels WHERE id = $1`, id).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dump, "top-secret") || strings.Contains(dump, "<plain>") {
		t.Fatalf("the database holds the channel's secrets readable: %s", dump)
	}
	const test = `mutation($id: ID!) { testChannel(id: $id) { status } }`
	var tested struct{ TestChannel struct{ Status string } }
	mustData(t, s.graphql(t, editor, test, map[string]any{"id": id}), &tested)
	if tested.TestChannel.Status != "SENT" || hook.count() != 1 {
		t.Fatalf("testChannel on the sealing server = %+v, receiver got %d", tested, hook.count())
	}

	other := startReplica(t, s.dbURL, "--roles", "api", "--secret-key-file", keyFile("b", "a key of another installation"))
	otherEditor := editorOf(other)
	var failed struct {
		TestChannel struct{ Status, Error string }
	}
	mustData(t, other.graphql(t, otherEditor, `mutation($id: ID!) { testChannel(id: $id) { status error } }`, map[string]any{"id": id}), &failed)
	if failed.TestChannel.Status != "FAILED" || !strings.Contains(failed.TestChannel.Error, "sealed with another secret key") {
		t.Errorf("testChannel with another key = %+v, want a failure naming the key", failed)
	}
	if hook.count() != 1 {
		t.Errorf("the receiver got %d messages, want the first only", hook.count())
	}
	const update = `mutation($id: ID!, $in: ChannelInput!) { updateChannel(id: $id, input: $in) { name } }`
	for _, in := range []map[string]any{
		{"name": "ops-team", "type": "webhook"},
		{"name": "ops-team", "type": "slack", "secrets": []map[string]any{{"key": "webhook_url", "value": "https://hooks.slack.com/x"}}},
	} {
		r := other.graphql(t, otherEditor, update, map[string]any{"id": id, "in": in})
		if len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "sealed with another secret key") {
			t.Fatalf("updateChannel to %v with another key: %+v, want it refused naming the key", in, r.Errors)
		}
	}
	var listed struct {
		Channel struct {
			SecretsError *string
			Secrets      []struct{ Set bool }
		}
	}
	const read = `query($id: ID!) { channel(id: $id) { secretsError secrets { set } } }`
	mustData(t, other.graphql(t, otherEditor, read, map[string]any{"id": id}), &listed)
	if e := listed.Channel.SecretsError; e == nil || !strings.Contains(*e, "sealed with another secret key") {
		t.Errorf("channel on the replica with another key has secretsError %v, want why", e)
	}
	mustData(t, s.graphql(t, editor, read, map[string]any{"id": id}), &listed)
	if listed.Channel.SecretsError != nil || !listed.Channel.Secrets[0].Set {
		t.Errorf("channel on the sealing server = %+v, want its secrets readable", listed.Channel)
	}
	// The first server still reads what it sealed.
	mustData(t, s.graphql(t, editor, test, map[string]any{"id": id}), &tested)
	if tested.TestChannel.Status != "SENT" || hook.count() != 2 {
		t.Errorf("testChannel after the refused update = %+v, receiver got %d", tested, hook.count())
	}

	// Rotation: a replica whose key is b, with a as the previous key, seals the
	// channel again with b at start; then b alone reads it.
	startReplica(t, s.dbURL, "--roles", "api", "--secret-key-file", keyFile("b", "a key of another installation"),
		"--previous-secret-key-files", keyFile("a", "the key of replica set A"))
	mustData(t, other.graphql(t, otherEditor, `mutation($id: ID!) { testChannel(id: $id) { status error } }`, map[string]any{"id": id}), &failed)
	if failed.TestChannel.Status != "SENT" || hook.count() != 3 {
		t.Errorf("testChannel with key b after the rotation = %+v, receiver got %d", failed, hook.count())
	}
}
