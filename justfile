# Thin aliases of cargo commands; `just --list` shows them.

# Run the server (embedded mode: SQLite under ./data).
run:
    cargo run --release

# The README's test command.
test:
    cargo test --workspace

# Write-path benchmark; figures go to BENCHMARKS.md.
bench:
    cargo bench -p newsroom-command --bench write_path

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Everything CI runs, including the service checks.
ci:
    bash .ci/run
