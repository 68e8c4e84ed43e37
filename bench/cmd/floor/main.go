// Command floor is the process-exec floor of the benchmarks: a static Go
// hello-world (built with CGO_ENABLED=0) that bench/run.sh runs with the
// same standard input as the sendmail programs. Its time is what any Go
// program pays to be started by the kernel and the Go runtime.
package main

import "os"

func main() {
	os.Stdout.WriteString("hello, world\n")
}
