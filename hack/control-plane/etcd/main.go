// Command etcd is the etcd server, built from etcd's server/v3 module for kubeforge's test control plane.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
