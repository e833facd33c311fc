# The test OpenID provider. Tests build it themselves (internal/testidp.Start, once per test
# process); this target is for running it by hand next to `make run`.
.PHONY: idp idp-run

## idp: build bin/storefleet-idp.
idp:
	$(GO) build -o $(BIN)/storefleet-idp ./cmd/storefleet-idp

## idp-run: serve the development IdP (users alice and ops) on http://127.0.0.1:5556.
idp-run: idp
	$(BIN)/storefleet-idp -config internal/testidp/testdata/dev.json
