//! Embedding throughput of the real encoder: int8 vs fp32, by batch size, at a fixed token count.
//!
//! ```sh
//! bash scripts/setup.sh
//! cargo run --release -p locus-embed --example bench -- --texts 128 --tokens 256
//! ```
//! Figures go to docs (see docs/embed-notes.md); no test asserts on timing.

use std::time::Instant;

use locus_embed::{EmbedConfig, Embedder, Precision, MODEL_NAME};

struct Args {
    texts: usize,
    tokens: usize,
    threads: usize,
    batches: Vec<usize>,
    rounds: usize,
    /// Text lengths spread evenly over 8..=tokens instead of all at `tokens`.
    mixed: bool,
    /// Instead of the encoder: time writing and reopening a VectorStore of this many vectors.
    store: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a =
        Args { texts: 128, tokens: 256, threads: 0, batches: vec![1, 32], rounds: 3, mixed: false, store: 0 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--texts" => a.texts = number(value()?)?,
            "--tokens" => a.tokens = number(value()?)?,
            "--threads" => a.threads = number(value()?)?,
            "--rounds" => a.rounds = number(value()?)?.max(1),
            "--mixed" => a.mixed = true,
            "--store" => a.store = number(value()?)?,
            "--batches" => {
                a.batches = value()?.split(',').map(|b| number(b.to_owned())).collect::<Result<_, _>>()?;
            }
            _ => return Err(format!("unknown argument {flag}; use --texts N --tokens N --mixed --threads N --batches 1,32 --rounds N, or --store N")),
        }
    }
    Ok(a)
}

/// Deterministic code-and-prose text of `2 × words` words (enough to fill `words`
/// tokens after truncation); `seed` varies the words so no two texts are the same.
fn text(seed: usize, words: usize) -> String {
    const WORDS: [&str; 24] = [
        "def",
        "register_hook",
        "(self,",
        "name,",
        "fn):",
        "self._hooks[name]",
        "=",
        "fn",
        "the",
        "session",
        "cookie",
        "is",
        "not",
        "refreshed",
        "after",
        "login",
        "Result<Config,",
        "Error>",
        "parse_matrix",
        "returns",
        "wrong",
        "values",
        "for",
        "nested",
    ];
    let mut state = seed as u64 * 6364136223846793005 + 1442695040888963407;
    (0..words * 2)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            WORDS[(state >> 33) as usize % WORDS.len()]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
    };
    if args.store > 0 {
        return bench_store(args.store);
    }
    let length = |i: usize| match args.mixed {
        // Words, not tokens: a word here is one to three tokens, so this spans short to truncated.
        true => 4 + (i * 37) % (args.tokens / 2),
        false => args.tokens,
    };
    let texts: Vec<String> = (0..args.texts).map(|i| text(i, length(i))).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let cfg = EmbedConfig { threads: args.threads, max_tokens: args.tokens, ..EmbedConfig::default() };
    println!(
        "texts {}, tokens/text {}{}, threads {}, rounds {}",
        args.texts,
        if args.mixed { "up to " } else { "" },
        args.tokens,
        describe_threads(args.threads),
        args.rounds
    );
    // Other work on the machine skews every figure: print the load so a reader can tell.
    println!("load average before: {}", load_average());
    println!("{:<6} {:>6} {:>10} {:>10} {:>12}", "model", "batch", "emb/s", "tokens/s", "emb/cpu-s");
    for precision in [Precision::Int8, Precision::Fp32] {
        let embedder = match Embedder::load_precision(&cfg, precision) {
            Ok(e) => e,
            // Locus's own encoder ships int8 only; the base folder has both.
            Err(e @ locus_embed::EmbedError::ModelNotFound { .. }) if precision == Precision::Fp32 => {
                println!("fp32: not in this model folder ({e}); LOCUS_MODEL_DIR=<cache>/models/{MODEL_NAME} has it");
                continue;
            }
            Err(e) => {
                eprintln!("bench: {e}");
                std::process::exit(1);
            }
        };
        let tokens: usize = refs.iter().map(|t| embedder.token_ids(t).map_or(0, |ids| ids.len())).sum();
        for &batch in &args.batches {
            let embedder = clone_with_batch(&cfg, precision, batch);
            embedder.embed(&refs[..refs.len().min(batch)]).expect("warm-up"); // first run allocates
            let (start, cpu_start) = (Instant::now(), cpu_seconds());
            for _ in 0..args.rounds {
                embedder.embed(&refs).expect("embed");
            }
            let secs = start.elapsed().as_secs_f64() / args.rounds as f64;
            let cpu = (cpu_seconds() - cpu_start) / args.rounds as f64;
            let per_cpu =
                if cpu > 0.0 { format!("{:.1}", args.texts as f64 / cpu) } else { "n/a".to_owned() };
            println!(
                "{:<6} {:>6} {:>10.1} {:>10.0} {:>12}",
                precision.label(),
                batch,
                args.texts as f64 / secs,
                tokens as f64 / secs,
                per_cpu
            );
        }
        drop(embedder);
    }
    println!("load average after: {}", load_average());
}

/// Writes `n` vectors to a fresh store in batches of 1,000, then reopens it.
fn bench_store(n: usize) {
    let dir = std::env::temp_dir().join(format!("locus-embed-bench-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let items: Vec<([u8; 32], Vec<f32>)> = (0..n)
        .map(|i| {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            (key, (0..locus_embed::DIM).map(|j| ((i + j) % 97) as f32 / 97.0).collect())
        })
        .collect();
    let store = locus_embed::VectorStore::open(&dir, "bench").expect("open");
    let start = Instant::now();
    for chunk in items.chunks(1000) {
        store.put_many(chunk).expect("put_many");
    }
    let write = start.elapsed();
    drop(store);
    let bytes = std::fs::metadata(dir.join("vectors.bin")).map_or(0, |m| m.len());
    let start = Instant::now();
    let store = locus_embed::VectorStore::open(&dir, "bench").expect("reopen");
    let open = start.elapsed();
    assert_eq!(store.len(), n);
    println!("load average: {}", load_average());
    println!(
        "{n} vectors, {:.1} MB: put_many {:.0} ms, reopen {:.0} ms",
        bytes as f64 / 1e6,
        write.as_secs_f64() * 1e3,
        open.as_secs_f64() * 1e3
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// CPU time (user + system) of this process so far, from /proc (Linux; 0 elsewhere).
/// Unlike wall time it hardly moves when other processes compete for the cores; with
/// one intra-op thread, embeddings per CPU-second is the per-core throughput.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // USER_HZ is 100 on every Linux architecture Locus builds for.
    (ticks(11) + ticks(12)) / 100.0
}

/// The 1-minute load average (Linux), or "n/a".
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "n/a".to_owned())
}

fn clone_with_batch(cfg: &EmbedConfig, precision: Precision, batch: usize) -> Embedder {
    Embedder::load_precision(cfg, precision).expect("load").with_batch_size(batch)
}

fn describe_threads(threads: usize) -> String {
    match threads {
        0 => format!("auto ({})", std::thread::available_parallelism().map_or(1, |n| n.get())),
        n => n.to_string(),
    }
}
