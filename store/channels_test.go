package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/amas-eye/amas/alerting/notifiers"
	"github.com/amas-eye/amas/internal/secretkey"
	"github.com/amas-eye/amas/store/storetest"
)

// TestChannelSecretsSealed: with a key, channel secrets are stored sealed (the
// database holds no plain text of them), secrets stored plain before are
// sealed by SealPlainSecrets, and a server with another key or none lists the
// channels still, each sealed one with SecretsErr saying why. One store plays
// every server, its key switched, so that it runs on a one-connection server.
func TestChannelSecretsSealed(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	hook := "https://example.com/hook?key=very-secret"

	// A channel written by a server without a key is plain in the database.
	old, err := st.CreateChannel(ctx, notifiers.Channel{Name: "old", Type: "webhook", Secrets: map[string]string{"url": hook + "-old"}})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := st.PlainSecretChannels(ctx); err != nil || n != 1 {
		t.Fatalf("PlainSecretChannels = %d, %v; want 1", n, err)
	}

	if _, err := st.SealSecrets(ctx); err == nil {
		t.Error("SealSecrets without a key succeeded")
	}
	first := mustKey(t, "the key of this installation")
	st.UseSecretKeys(first)
	if rep, err := st.SealSecrets(ctx); err != nil || rep.Sealed != 1 || rep.Resealed != 0 || len(rep.Unreadable) != 0 {
		t.Fatalf("SealSecrets = %+v, %v; want the plain channel sealed", rep, err)
	}
	if rep, err := st.SealSecrets(ctx); err != nil || rep.Sealed+rep.Resealed != 0 {
		t.Fatalf("SealSecrets again = %+v, %v; want nothing to do", rep, err)
	}
	created, err := st.CreateChannel(ctx, notifiers.Channel{Name: "new", Type: "webhook", Secrets: map[string]string{"url": hook}})
	if err != nil {
		t.Fatal(err)
	}
	if created.Secrets["url"] != hook {
		t.Errorf("created channel's secrets = %v", created.Secrets)
	}
	created.Secrets["bearer_token"] = "tok"
	if _, err := st.UpdateChannel(ctx, created); err != nil {
		t.Fatal(err)
	}

	var leaked int
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM notify_channels
		WHERE secrets::text LIKE '%very-secret%' OR encode(secrets_sealed, 'escape') LIKE '%very-secret%' OR secrets_sealed IS NULL`).Scan(&leaked); err != nil {
		t.Fatal(err)
	}
	if leaked != 0 {
		t.Errorf("%d channels hold their secrets readable in the database", leaked)
	}
	if n, err := st.PlainSecretChannels(ctx); err != nil || n != 0 {
		t.Errorf("PlainSecretChannels after sealing = %d, %v", n, err)
	}

	for _, tc := range []struct {
		name    string
		key     *secretkey.Key
		wantErr string // "" reads every secret
	}{
		{"the same key text read again", mustKey(t, "the key of this installation\n"), ""},
		{"another key", mustKey(t, "someone else's key text"), "sealed with another secret key"},
		{"no key", nil, "this server has no --secret-key-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st.UseSecretKeys(tc.key)
			chans, err := st.Channels(ctx)
			if err != nil || len(chans) != 2 {
				t.Fatalf("Channels = %d channels, %v; want both listed", len(chans), err)
			}
			for _, ch := range chans {
				want := map[string]string{"old": hook + "-old", "new": hook}[ch.Name]
				if tc.wantErr == "" {
					if ch.SecretsErr != nil || ch.Secrets["url"] != want || ch.Name == "new" && ch.Secrets["bearer_token"] != "tok" {
						t.Errorf("channel %s: secrets %v, err %v; want url %s", ch.Name, ch.Secrets, ch.SecretsErr, want)
					}
					continue
				}
				if ch.SecretsErr == nil || !strings.Contains(ch.SecretsErr.Error(), tc.wantErr) || len(ch.Secrets) != 0 {
					t.Errorf("channel %s: secrets %v, err %v; want none and an error saying %q", ch.Name, ch.Secrets, ch.SecretsErr, tc.wantErr)
				}
				if _, err := notifiers.New(ch, notifiers.Deps{}); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("notifiers.New(%s) = %v, want the secrets error", ch.Name, err)
				}
			}
			if got, err := st.Channel(ctx, old.ID); err != nil || (tc.wantErr == "") != (got.SecretsErr == nil) {
				t.Errorf("Channel(old) = %+v, %v", got, err)
			}
		})
	}

	// Rotation: a new key with the first as previous reads everything, and
	// SealSecrets seals it all again with the new key; a server with a key
	// that sealed none of it reports the channels it cannot read.
	second := mustKey(t, "the key after rotation")
	st.UseSecretKeys(mustKey(t, "an unrelated key text"))
	if rep, err := st.SealSecrets(ctx); err != nil || rep.Sealed+rep.Resealed != 0 || len(rep.Unreadable) != 2 {
		t.Errorf("SealSecrets with an unrelated key = %+v, %v; want both channels unreadable, none changed", rep, err)
	}
	st.UseSecretKeys(second, first)
	if chans, err := st.Channels(ctx); err != nil || len(chans) != 2 || chans[0].SecretsErr != nil || chans[1].SecretsErr != nil {
		t.Fatalf("Channels with the previous key in the ring = %+v, %v", chans, err)
	}
	if rep, err := st.SealSecrets(ctx); err != nil || rep.Resealed != 2 || rep.Sealed != 0 || len(rep.Unreadable) != 0 {
		t.Fatalf("SealSecrets after rotation = %+v, %v; want both sealed again", rep, err)
	}
	st.UseSecretKeys(second)
	chans, err := st.Channels(ctx)
	if err != nil || len(chans) != 2 {
		t.Fatalf("Channels = %v, %v", chans, err)
	}
	for _, ch := range chans {
		if ch.SecretsErr != nil || ch.Secrets["url"] == "" {
			t.Errorf("channel %s after rotation: %v, %v; want it read with the new key alone", ch.Name, ch.Secrets, ch.SecretsErr)
		}
	}
}

func mustKey(t *testing.T, text string) *secretkey.Key {
	t.Helper()
	k, err := secretkey.New([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
