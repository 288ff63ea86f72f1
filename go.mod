module github.com/swapfs/swapfs

go 1.26.8

require (
	github.com/hanwen/go-fuse/v2 v2.12.1
	go.etcd.io/bbolt v1.4.3
	golang.org/x/sys v0.49.0
	pgregory.net/rapid v1.3.0
)
