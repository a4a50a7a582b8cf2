// Command vigil supervises a Cosmos SDK node and applies its governance
// upgrades: a drop-in replacement for cosmovisor. See README.md.
package main

import "os"

func main() {
	os.Exit(cli(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv))
}
