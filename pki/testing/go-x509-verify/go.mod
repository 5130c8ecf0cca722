module trellis.dev/pki/testing/go-x509-verify

go 1.26
