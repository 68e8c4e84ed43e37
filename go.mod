module github.com/handoff-mta/handoff

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/emersion/go-message v0.18.2
	golang.org/x/sys v0.50.0
)
