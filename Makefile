# Developer entry points. `make test` is the full check that CI runs (.ci/run).
.PHONY: test run build bench venv dynamodb-start dynamodb-stop moto-start moto-stop fmt lint doc template-check deny

## Full test command: fmt check, clippy, cargo test against DynamoDB Local (KMS, S3: moto).
## Extra cargo test args: make test ARGS='-p snapshot-core -- --nocapture'
test:
	scripts/test.sh $(ARGS)

## The whole system locally (DynamoDB Local, moto, tables, admin API, snapshotter, pruner, demo traffic);
## Ctrl-C stops it. No demo traffic: make run DEMO=0. Flags: make run ARGS='--port 8080'
run:
	@DEMO=$(DEMO) scripts/run.sh $(ARGS)

## Release build of the three functions with cargo-lambda (target/lambda/<name>/bootstrap);
## for AWS's arm64: make build ARGS=--arm64
build:
	scripts/build.sh $(ARGS)

## Performance figures written to docs/bench/ (release build, DynamoDB Local, cqrs-es +
## dynamo-es in the same run); not part of `make test`. make bench BENCH_RUNS=5
bench:
	@BENCH_RUNS=$(BENCH_RUNS) BENCH_SIZES=$(BENCH_SIZES) BENCH_ONLY=$(BENCH_ONLY) scripts/bench.sh

## Offline checks of template.yaml (cfn-lint, sam validate), as in `make test`.
template-check:
	scripts/template-check.sh

## Supply-chain check of Cargo.lock (cargo-deny bans, licenses, sources; offline), as in `make test`.
deny:
	scripts/deny.sh

## A DynamoDB Local of your own (instance `dev`, in memory); use with: eval "$$(make -s dynamodb-start)"
dynamodb-start:
	@scripts/dynamodb-local.sh start

## Stop the DynamoDB Local started by dynamodb-start.
dynamodb-stop:
	@scripts/dynamodb-local.sh stop

## Project-local Python virtualenv (.venv) with moto (KMS and S3 locally).
venv:
	@scripts/venv.sh

## Start moto (KMS and S3) in the background; use with: eval "$$(make -s moto-start)"
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
	cargo clippy --locked --workspace --all-targets -- -D warnings

## The workspace's API docs with rustdoc's warnings as errors (broken links, private links);
## not part of `make test`: about 3 minutes on a fresh clone, under a minute after a change.
doc:
	RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --workspace
