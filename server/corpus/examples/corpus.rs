//! `locus corpus build` without the binary: `cargo run --release -p locus-corpus --example corpus
//! -- --mirrors DIR --out DIR --repos-file FILE` (see scripts/corpus/README.md).

use clap::Parser;

#[derive(Parser)]
#[command(name = "corpus", about = "Build the localization training corpus from bare git mirrors")]
struct Cli {
    #[command(flatten)]
    args: locus_corpus::CorpusArgs,
}

fn main() -> anyhow::Result<()> {
    locus_corpus::run_cli(Cli::parse().args)
}
