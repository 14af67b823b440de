package store_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/amas-eye/amas/alerting/notifiers"
	"github.com/amas-eye/amas/internal/secretkey"
	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

// TestChannelSecretsSealed: with a key, channel secrets are stored sealed (the
// database holds no plain text of them), secrets stored plain before are
// sealed by SealSecrets, and a server with another key or none lists the
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
	if plain, sealedBy, err := st.SecretsAtRest(ctx); err != nil || plain != 1 || len(sealedBy) != 0 {
		t.Fatalf("SecretsAtRest = %d plain, %v sealed, %v; want 1 plain", plain, sealedBy, err)
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
	if plain, sealedBy, err := st.SecretsAtRest(ctx); err != nil || plain != 0 || sealedBy[first.ID()] != 2 || len(sealedBy) != 1 {
		t.Errorf("SecretsAtRest after sealing = %d plain, %v sealed, %v; want both sealed by %s", plain, sealedBy, err, first.ID())
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
	if rep, err := st.SealSecrets(ctx); err != nil || rep.Sealed+rep.Resealed != 0 || len(rep.Unreadable) != 2 || rep.Unreadable[0].Key != first.ID() {
		t.Errorf("SealSecrets with an unrelated key = %+v, %v; want both channels unreadable, sealed by %s, none changed", rep, err, first.ID())
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

	// A binary older than migration 0008 updates the plain column only: its
	// write is the newer, read as such and sealed at the next start.
	if _, err := st.Pool().Exec(ctx, `UPDATE notify_channels SET secrets = '{"url": "https://example.com/newer"}' WHERE name = 'new'`); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Channel(ctx, created.ID); err != nil || got.Secrets["url"] != "https://example.com/newer" {
		t.Fatalf("channel updated by an old binary reads %v, %v; want its plain secrets", got.Secrets, err)
	}
	if rep, err := st.SealSecrets(ctx); err != nil || rep.Sealed != 1 || rep.Resealed != 0 {
		t.Fatalf("SealSecrets after an old binary's update = %+v, %v; want that channel sealed", rep, err)
	}
	if got, err := st.Channel(ctx, created.ID); err != nil || got.Secrets["url"] != "https://example.com/newer" {
		t.Errorf("channel after sealing its newer secrets reads %v, %v", got.Secrets, err)
	}
}

// TestSealSecretsReplicasAtOnce: replicas starting together seal every plain
// channel once between them, and neither fails.
func TestSealSecretsReplicasAtOnce(t *testing.T) {
	if os.Getenv("AMAS_TEST_SINGLE_DB") == "1" {
		t.Skip("needs two connections")
	}
	st, db := storetest.Migrated(t)
	ctx := context.Background()
	const channels = 40
	for i := range channels {
		if _, err := st.CreateChannel(ctx, notifiers.Channel{Name: fmt.Sprintf("c%d", i), Type: "webhook",
			Secrets: map[string]string{"url": fmt.Sprintf("https://example.com/%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	key := mustKey(t, "the key of both replicas")
	stores := []*store.Store{st, nil}
	var err error
	if stores[1], err = store.Open(ctx, db.URL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stores[1].Close)
	reports := make([]store.SealReport, len(stores))
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		s.UseSecretKeys(key)
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = s.SealSecrets(ctx)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || reports[0].Sealed+reports[1].Sealed != channels {
		t.Fatalf("replicas sealed %+v and %+v (%v, %v); want %d between them", reports[0], reports[1], errs[0], errs[1], channels)
	}
	chans, err := stores[1].Channels(ctx)
	if err != nil || len(chans) != channels {
		t.Fatalf("Channels = %d, %v", len(chans), err)
	}
	for _, ch := range chans {
		if ch.SecretsErr != nil || ch.Secrets["url"] != "https://example.com/"+strings.TrimPrefix(ch.Name, "c") {
			t.Errorf("channel %s reads %v, %v", ch.Name, ch.Secrets, ch.SecretsErr)
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
