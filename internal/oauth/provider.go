package oauth

import "net/url"

// Provider names, the values of a relay's oauth2.provider.
const (
	Google    = "google"
	Microsoft = "microsoft"
)

// DefaultTenant is Microsoft's tenant when none is given: work, school
// and personal accounts alike.
const DefaultTenant = "common"

// Provider is what handoff knows of a provider: its endpoints and the
// scopes for sending mail over SMTP.
type Provider struct {
	TokenURL, DeviceAuthURL, AuthURL string
	// Scopes are those SMTP AUTH needs, with offline access (a refresh
	// token).
	Scopes []string
	// AuthParams are extra parameters of the authorization request.
	AuthParams map[string]string
	// DeviceFlow reports whether the provider grants Scopes through the
	// device authorization grant. Google does not: its device flow takes
	// only a few scopes (profile, Drive files, YouTube), not
	// https://mail.google.com/.
	DeviceFlow bool
}

// Defaults returns the defaults of a known provider ("google",
// "microsoft"); tenant is Microsoft's tenant ("" for DefaultTenant),
// ignored for Google. ok is false for another name.
func Defaults(name, tenant string) (p Provider, ok bool) {
	switch name {
	case Google:
		// https://developers.google.com/identity/protocols/oauth2/native-app
		// and .../limited-input-device (allowed scopes).
		return Provider{
			TokenURL:      "https://oauth2.googleapis.com/token",
			DeviceAuthURL: "https://oauth2.googleapis.com/device/code",
			AuthURL:       "https://accounts.google.com/o/oauth2/v2/auth",
			Scopes:        []string{"https://mail.google.com/"},
			// A refresh token, and a new one at every login.
			AuthParams: map[string]string{"access_type": "offline", "prompt": "consent"},
		}, true
	case Microsoft:
		// https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth
		if tenant == "" {
			tenant = DefaultTenant
		}
		base := "https://login.microsoftonline.com/" + url.PathEscape(tenant) + "/oauth2/v2.0/"
		return Provider{
			TokenURL:      base + "token",
			DeviceAuthURL: base + "devicecode",
			AuthURL:       base + "authorize",
			Scopes:        []string{"https://outlook.office.com/SMTP.Send", "offline_access"},
			DeviceFlow:    true,
		}, true
	}
	return Provider{}, false
}
