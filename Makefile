# The two things a person does here. Both need root on Debian (see README).
.PHONY: test demo build validate

test:
	bash e2e/test.sh

demo:
	bash e2e/demo.sh

build:
	go build -o bin/ariflow ./cmd/ariflow

validate:
	go run ./cmd/ariflow validate flows/examples
