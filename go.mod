module github.com/tsys-group/tsys-ci

go 1.26.8

require (
	github.com/bndr/gojenkins v1.1.0
	github.com/urfave/cli/v2 v2.27.7
)

require (
	github.com/cpuguy83/go-md2man/v2 v2.0.7 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/xrash/smetrics v0.0.0-20240521201337-686a1a2994c1 // indirect
	go.yaml.in/yaml/v2 v2.4.2 // indirect
	golang.org/x/net v0.0.0-20200114155413-6afb5195e5aa // indirect
	sigs.k8s.io/yaml v1.6.0 // indirect
)
