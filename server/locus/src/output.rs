//! Plain-text and JSON renderings of index statistics and localizations for the terminal.

use locus_engine::{Granularity, LocatedItem, Stats, Workspace};
use locus_search::{Localization, Ranked, Trace};
use serde::Serialize;

/// Where a located item is, on the command line: its path and its span (0-based lines, byte
/// columns).
#[derive(Serialize)]
pub struct Place {
    path: String,
    range: Range,
}

#[derive(Serialize)]
struct Range {
    start: Position,
    end: Position,
}

#[derive(Serialize)]
struct Position {
    line: u32,
    character: u32,
}

impl Place {
    fn of(r: &Ranked) -> Place {
        let at = |p: locus_syntax::Point| Position { line: p.line, character: p.col };
        Place { path: r.path.clone(), range: Range { start: at(r.span.start), end: at(r.span.end) } }
    }
}

/// The predicted sets (adaptive cut-off), full names.
#[derive(Serialize)]
struct Predicted<'a> {
    files: &'a [String],
    functions: &'a [String],
}

/// `locus locate --json`: the items (the server's, with a path for a URI), the predicted sets,
/// the stats (the server's) and the whole trace.
#[derive(Serialize)]
pub struct LocateOutput<'a> {
    files: Vec<LocatedItem<Place>>,
    functions: Vec<LocatedItem<Place>>,
    predicted: Predicted<'a>,
    stats: Stats,
    trace: &'a Trace,
}

impl<'a> LocateOutput<'a> {
    /// The first `top` of each list (only one list with a `granularity`).
    pub fn new(
        ws: &Workspace,
        loc: &'a Localization,
        top: usize,
        granularity: Option<Granularity>,
    ) -> LocateOutput<'a> {
        let items = |list: &[Ranked], shown: bool| -> Vec<LocatedItem<Place>> {
            if !shown {
                return Vec::new();
            }
            list.iter().take(top).map(|r| LocatedItem::new(r, Place::of(r))).collect()
        };
        LocateOutput {
            files: items(&loc.files, granularity != Some(Granularity::Function)),
            functions: items(&loc.functions, granularity != Some(Granularity::File)),
            predicted: Predicted { files: &loc.predicted_files, functions: &loc.predicted_functions },
            stats: Stats::new(ws, loc, granularity.unwrap_or_default(), true),
            trace: &loc.trace,
        }
    }
}

pub fn print_human(loc: &Localization, top: usize, granularity: Option<Granularity>) {
    if granularity != Some(Granularity::Function) {
        println!("Files:");
        for (i, r) in loc.files.iter().take(top).enumerate() {
            println!("{:>3}. [{:.2}] {}  — {}", i + 1, r.score, r.path, r.reason);
        }
    }
    if granularity != Some(Granularity::File) {
        println!("Functions:");
        for (i, r) in loc.functions.iter().take(top).enumerate() {
            println!(
                "{:>3}. [{:.2}] {}:{}  {}  — {}",
                i + 1,
                r.score,
                r.path,
                r.span.start.line + 1,
                r.name.split_once(':').map(|x| x.1).unwrap_or(&r.name),
                r.reason
            );
        }
    }
    let t = &loc.trace;
    println!(
        "{} turns, {} calls ({} redundant, {} considered and not issued), efficiency {:.2}, {:.0} ms",
        t.turns.len(),
        t.calls,
        t.redundant_calls,
        t.skipped_calls,
        t.efficiency,
        t.ms
    );
}

pub fn print_explain(loc: &Localization) {
    let t = &loc.trace;
    let policy = match t.call_threshold {
        Some(th) => format!("{} (issues calls valued at least {th:.3})", t.policy),
        None => t.policy.to_string(),
    };
    println!(
        "Search trace: {} signals in the issue; calls chosen by the {policy} policy; stopped: {}; ranked by {}{}",
        t.signals,
        t.stop,
        t.ranking,
        match (t.model_not_trained_on, t.language_model) {
            (Some(l), _) => format!(" (the learned models were not trained on {} issues)", l.as_str()),
            (None, Some(l)) => format!(" (the models trained on {} issues alone)", l.as_str()),
            (None, None) => String::new(),
        }
    );
    if let Some(d) = t.on_demand {
        println!(
            "vectors on demand: {} of the candidates' embedded or read from the cache, {:.0} ms (the workspace's are not all computed; `locus index` computes them)",
            d.vectors, d.ms
        );
    }
    for (i, turn) in t.turns.iter().enumerate() {
        println!(
            "turn {} — {} calls in parallel, {} considered and not issued, {:.1} ms",
            i + 1,
            turn.calls.len(),
            turn.skipped,
            turn.ms
        );
        for c in &turn.calls {
            let value = c.value.map(|v| format!("value {v:.3}, ")).unwrap_or_default();
            println!(
                "    {:<60} {value}returned {:>3}, new {:>3}, g={:.2}, {:.2} ms",
                c.call, c.returned, c.new, c.efficiency, c.ms
            );
        }
        print_declined(t, i as u32 + 1);
    }
    print_declined(t, t.turns.len() as u32 + 1);
    if let Some(why) = &t.pool_widened {
        println!("candidate pool widened: {why}");
    }
    let mut tools: Vec<_> = t.ms_by_tool.iter().collect();
    tools.sort_by(|a, b| a.0.cmp(b.0));
    let per_tool: Vec<String> = tools.iter().map(|(k, v)| format!("{k} {v:.1} ms")).collect();
    println!("time per tool: {}", per_tool.join(", "));
}

/// The learned policy's declined calls of `turn`: how many, and the best valued few.
fn print_declined(t: &locus_search::Trace, turn: u32) {
    const SHOWN: usize = 3;
    let declined: Vec<_> = t.declined.iter().filter(|d| d.turn == turn).collect();
    if declined.is_empty() {
        return;
    }
    let when = if turn as usize > t.turns.len() { "then" } else { "and" };
    println!("    {when} declined {} calls; the best valued:", declined.len());
    for d in declined.iter().take(SHOWN) {
        let value = d.value.map(|v| format!("value {v:.3}")).unwrap_or_default();
        println!("      {:<58} {value} ({})", d.call, d.reason);
    }
}

/// Progress of long work on stderr, readable on a terminal and in a log: on a terminal one line
/// redrawn in place (count, percent, rate); otherwise a plain line at most every
/// [`Progress::LOG_EVERY`] (carriage returns would pile up in a log), and a last line with the
/// total time either way.
pub struct Progress {
    what: &'static str,
    unit: &'static str,
    terminal: bool,
    start: std::time::Instant,
    last_line: Option<std::time::Instant>,
    state: Option<(usize, usize)>,
}

impl Progress {
    /// How often a plain line is written when stderr is not a terminal.
    pub const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

    pub fn stderr(what: &'static str, unit: &'static str) -> Progress {
        use std::io::IsTerminal;
        Progress::new(what, unit, std::io::stderr().is_terminal())
    }

    fn new(what: &'static str, unit: &'static str, terminal: bool) -> Progress {
        Progress { what, unit, terminal, start: std::time::Instant::now(), last_line: None, state: None }
    }

    /// `done` of `total` so far.
    pub fn update(&mut self, done: usize, total: usize) {
        self.state = Some((done, total));
        let now = std::time::Instant::now();
        if self.terminal {
            eprint!("\r{}", self.line(done, total));
        } else if self.last_line.is_none_or(|t| now.duration_since(t) >= Progress::LOG_EVERY) {
            eprintln!("{}", self.line(done, total));
            self.last_line = Some(now);
        }
    }

    /// The closing line (nothing when there was no work).
    pub fn finish(self) {
        if let Some((done, total)) = self.state {
            let end = if self.terminal { "\r" } else { "" };
            eprintln!("{end}{} in {:.1} s", self.line(done, total), self.start.elapsed().as_secs_f64());
        }
    }

    fn line(&self, done: usize, total: usize) -> String {
        let secs = self.start.elapsed().as_secs_f64();
        let pct = if total == 0 { 100.0 } else { 100.0 * done as f64 / total as f64 };
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        format!("locus: {} {done}/{total} {} ({pct:.0}%, {rate:.0}/s)", self.what, self.unit)
    }
}

#[cfg(test)]
mod tests {
    use super::Progress;

    #[test]
    fn a_progress_line_has_count_percent_and_rate() {
        let p = Progress::new("embedding", "entities", false);
        let line = p.line(50, 200);
        assert!(line.starts_with("locus: embedding 50/200 entities (25%, "), "{line}");
        assert!(line.ends_with("/s)"), "{line}");
        assert!(Progress::new("x", "y", false).line(0, 0).contains("(100%"), "nothing to do is done");
    }
}
