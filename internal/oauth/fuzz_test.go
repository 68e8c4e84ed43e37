package oauth

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeToken: DecodeToken never panics; what it refuses is
// ErrBadToken; what it accepts passes check and survives encode and a
// second decode unchanged. The seeds are testdata/fuzz/FuzzDecodeToken
// and a few below.
func FuzzDecodeToken(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"a","refresh_token":"r","expiry":"2026-11-28T23:35:49Z","token_type":"Bearer"}`,
		`{"refresh_token":"r"}`,
		`{}`,
		`[1]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := DecodeToken(data)
		if err != nil {
			if !errors.Is(err, ErrBadToken) || tok != nil {
				t.Fatalf("DecodeToken = %+v, %v", tok, err)
			}
			return
		}
		if err := tok.check(); err != nil {
			t.Fatalf("accepted a token that fails check: %v", err)
		}
		enc := tok.encode()
		back, err := DecodeToken(enc)
		if err != nil {
			t.Fatalf("encoded token does not decode: %v\n%s", err, enc)
		}
		if back.AccessToken != tok.AccessToken || back.RefreshToken != tok.RefreshToken || back.TokenType != tok.TokenType || !back.Expiry.Equal(tok.Expiry) {
			t.Fatalf("round trip: %+v, want %+v", back, tok)
		}
		if !bytes.Equal(back.encode(), enc) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, back.encode())
		}
	})
}
