module github.com/vigilhq/vigil

go 1.26

require (
	github.com/fsnotify/fsnotify v1.10.1
	github.com/pelletier/go-toml/v2 v2.2.4
	golang.org/x/sys v0.13.0
)

require github.com/cenkalti/backoff/v4 v4.3.0 // indirect
