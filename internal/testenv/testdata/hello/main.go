// Command hello is built by testenv's tests.
package main

import "fmt"

func main() { fmt.Println("hello from testenv") }
