//! The `locus` binary: the command line (`index`, `locate`, `eval`, `corpus`, `doctor`) and, with no
//! subcommand, the language server on stdio.

mod cli;
mod eval_cmd;
mod output;
mod pairs;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "locus", version, about = "Locate the code a bug report points to.")]
struct Args {
    /// Accepted for editors that pass it; the server always speaks on stdio.
    #[arg(long, global = true, hide = true)]
    stdio: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Index a workspace and print what was found.
    Index(cli::IndexArgs),
    /// Rank the files and functions an issue points to.
    Locate(cli::LocateArgs),
    /// Measure localization on benchmark instances (SWE-bench Lite, tokio issues).
    Eval(eval_cmd::EvalArgs),
    /// Build the training corpus from bare mirrors, or the encoder's training pairs from it.
    #[command(subcommand)]
    Corpus(CorpusCommand),
    /// Say which runtime, encoder and models this installation found, where, their checksums,
    /// the vector cache's size, and for anything missing the command that fixes it.
    Doctor(cli::DoctorArgs),
    /// Run the language server on stdio (the default).
    Lsp,
}

#[derive(Subcommand)]
enum CorpusCommand {
    /// Instances (a pull request's text → the functions it modified) from bare mirrors.
    Build(locus_corpus::CorpusArgs),
    /// The encoder's training pairs (query, gold functions, hard negatives) from a corpus.
    Pairs(pairs::PairsArgs),
}

/// glibc gives each thread that allocates its own heap ("arena", up to 8 per core); the server's
/// tokio, rayon and blocking threads then keep freed memory in many half-empty heaps. One arena
/// per core holds the same work in less resident memory (`docs/benchmarks.md`, session 9).
///
/// With fewer arenas than threads, though, which arena a thread gets is chance, and when the
/// parse threads share one they spend the build waiting on its lock (a cold open of sympy took
/// 4.8 s instead of 1.9 s in half of the runs, session 18). So tree-sitter, whose parsers make
/// most of the allocations a parse does, allocates from mimalloc instead: a heap per thread, no
/// lock to share. mimalloc is told to give freed memory back at once and to commit its arenas on
/// demand; with its defaults sympy's server peaked at 409 MB, over the 400 MB budget (session 19).
fn configure_allocators() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt, mi_option_set and ts_set_allocator only set tunables and function
    // pointers; called first thing in main, before any thread or tree-sitter object exists.
    unsafe {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        libc::mallopt(libc::M_ARENA_MAX, cores.clamp(2, 64) as libc::c_int);
        use libmimalloc_sys as mi;
        // Option numbers of mimalloc 3's `mi_option_e` (libmimalloc-sys 0.1.49, pinned).
        const ARENA_EAGER_COMMIT: mi::mi_option_t = 4;
        const PURGE_DELAY: mi::mi_option_t = 15;
        mi::mi_option_set(ARENA_EAGER_COMMIT, 0);
        mi::mi_option_set(PURGE_DELAY, 0);
        tree_sitter::set_allocator(Some(tree_sitter::Allocator {
            malloc: mi::mi_malloc,
            calloc: mi::mi_calloc,
            realloc: mi::mi_realloc,
            free: mi::mi_free,
        }));
    }
}

fn main() -> std::process::ExitCode {
    configure_allocators();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOCUS_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let result = match args.command {
        Some(Command::Index(a)) => cli::index(a),
        Some(Command::Locate(a)) => cli::locate(a),
        Some(Command::Eval(a)) => eval_cmd::run(a),
        Some(Command::Doctor(a)) => cli::doctor(a),
        Some(Command::Corpus(CorpusCommand::Build(a))) => locus_corpus::run_cli(a),
        Some(Command::Corpus(CorpusCommand::Pairs(a))) => pairs::run(a),
        Some(Command::Lsp) | None => {
            let _ = args.stdio;
            lsp()
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("locus: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// How long the language server waits, after `exit`, for blocking work still running: a read of
/// stdin (the client need not close it) never ends by itself.
const EXIT_GRACE_MS: u64 = 200;

fn lsp() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(locus_lsp::serve_stdio());
    rt.shutdown_timeout(std::time::Duration::from_millis(EXIT_GRACE_MS));
    Ok(())
}
