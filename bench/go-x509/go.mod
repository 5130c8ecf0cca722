module trellis.dev/bench/go-x509

go 1.26
