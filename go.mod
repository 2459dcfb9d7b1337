module github.com/fullnat/fullnat

// The oldest Go the module builds with: mdlayher/netlink v1.11, mdlayher/socket
// and x/net need 1.25.0; x/sys stays at v0.47.0, the newest that does not need
// 1.26. go vet's stdversion check (make check) flags standard-library symbols
// newer than this line.
go 1.25.0

require (
	github.com/mdlayher/genetlink v1.4.0
	github.com/mdlayher/netlink v1.11.2
	github.com/urfave/cli/v2 v2.27.7
	golang.org/x/net v0.53.0
	golang.org/x/sys v0.47.0
)

require (
	github.com/cpuguy83/go-md2man/v2 v2.0.7 // indirect
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/mdlayher/socket v0.6.0 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/xrash/smetrics v0.0.0-20240521201337-686a1a2994c1 // indirect
	golang.org/x/sync v0.20.0 // indirect
)
