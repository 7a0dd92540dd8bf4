# Developer entry points. `make test` is the full check that CI runs (.ci/run).
.PHONY: test venv moto-start moto-stop fmt lint

## Full test command: fmt check, clippy, cargo test against a local moto server.
## Extra cargo test args: make test ARGS='-p snapshot-core -- --nocapture'
test:
	scripts/test.sh $(ARGS)

## Project-local Python virtualenv (.venv) with the local AWS emulator.
venv:
	@scripts/venv.sh

## Start moto in the background; use with: eval "$$(make -s moto-start)"
moto-start:
	@scripts/moto.sh start

## Stop the moto server started by moto-start.
moto-stop:
	@scripts/moto.sh stop

## Format the Rust code.
fmt:
	cargo fmt --all

## Format check and clippy, as in `make test`.
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
