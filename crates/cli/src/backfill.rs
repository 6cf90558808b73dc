//! `dms-cdc backfill`: the initial load (or a reload) of the mapping's
//! root tables through the engine, beside the running stream
//! ([`dms_cdc_devkit::backfill`]).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dms_cdc_core::dms::TableName;
use dms_cdc_core::engine::Engine;
use dms_cdc_core::mapping::{Mapping, Transforms};
use dms_cdc_core::target::Target;
use dms_cdc_devkit::backfill::{backfill, roots_only, BackfillOptions, Progress, RangeReport};
use dms_cdc_devkit::capture::AnySource;
use dms_cdc_devkit::capture::CaptureOptions;
use dms_cdc_ops::connect::Endpoints;

/// `dms-cdc backfill`: load the target from the source by primary-key
/// ranges of the mapping's root tables, through the engine (version guard,
/// quarantine), while the stream runs. Resumable: run the same command
/// again after a kill.
///
/// Exit codes: 0 every range loaded (records the target refused are
/// quarantined: see `dms-cdc quarantine list`); 1 a chunk kept failing
/// retryably (run again: it resumes); 2 usage or configuration error.
#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// The mapping file (the function's).
    #[arg(long)]
    pub mapping: PathBuf,
    /// Source URL: mysql://... or postgres://... (the scheme picks the adapter); for a
    /// mapping with [[source.instance]]s, `name=URL` per instance, separated by spaces.
    #[arg(long, env = "DMS_CDC_SOURCE_URL", hide_env_values = true)]
    pub source: String,
    /// Target URL: mysql://... or postgres://... (postgresql://); the scheme picks the adapter.
    #[arg(long, env = "DMS_CDC_TARGET_URL", hide_env_values = true)]
    pub target: String,
    /// The function's name: progress (lanes `backfill-...` in
    /// dms_cdc_checkpoint) and quarantined records are kept under it.
    #[arg(long)]
    pub function_name: String,
    /// Only this root table (`schema.table`; repeat for several). Default: every root table of the mapping.
    #[arg(long = "table")]
    pub tables: Vec<String>,
    /// Rows per source read and per target transaction (1 to 65535).
    #[arg(long, default_value_t = 1000, value_parser = dms_cdc_core::target::parse_chunk_size)]
    pub chunk_size: usize,
    /// This process's part of each table, `i/N` (split the key range in N
    /// parts; run one process per part, e.g. one container each).
    #[arg(long, default_value = "1/1", value_parser = parse_part)]
    pub part: (usize, usize),
    /// The key range --part splits, `LO..HI` (the same in every part;
    /// required with N > 1): e.g. SELECT MIN(id), MAX(id) once. Keys outside
    /// it belong to the first or the last part.
    #[arg(long, value_parser = parse_keys)]
    pub keys: Option<(i128, i128)>,
    /// Ranges of this part loaded concurrently.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// At most this many rows per second (this process).
    #[arg(long)]
    pub rows_per_second: Option<f64>,
    /// Progress: a bar on a terminal, else a line every 10 s (`lines`), or `none`.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressArg,
}

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressArg {
    /// A bar when stderr is a terminal, else lines.
    Auto,
    /// Plain lines on stderr every 10 s.
    Lines,
    /// Nothing until the summary.
    None,
}

fn parse_keys(text: &str) -> Result<(i128, i128), String> {
    let (lo, hi) = text
        .split_once("..")
        .ok_or_else(|| format!("{text:?}: expected LO..HI, e.g. 1..5000000"))?;
    let lo: i128 = lo
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: LO is not an integer"))?;
    let hi: i128 = hi
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: HI is not an integer"))?;
    if lo > hi {
        return Err(format!("{text:?}: LO is greater than HI"));
    }
    Ok((lo, hi))
}

fn parse_part(text: &str) -> Result<(usize, usize), String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: expected i/N, e.g. 2/4"))?;
    let i: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: i is not a number"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: N is not a number"))?;
    if n == 0 || i == 0 || i > n {
        return Err(format!("{text:?}: expected 1 <= i <= N"));
    }
    Ok((i, n))
}

/// Runs `dms-cdc backfill`.
pub async fn run(args: BackfillArgs, transforms: Transforms) -> anyhow::Result<ExitCode> {
    let mapping = Mapping::load(&args.mapping, &transforms)?;
    let capture = CaptureOptions::from_mapping(&mapping);
    let tables = args
        .tables
        .iter()
        .map(|t| {
            let (schema, table) = t
                .split_once('.')
                .ok_or_else(|| anyhow::anyhow!("--table {t}: expected schema.table"))?;
            Ok(TableName::new(schema, table))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let options = BackfillOptions {
        chunk: args.chunk_size,
        part: args.part.0,
        parts: args.part.1,
        parallel: args.parallel.max(1),
        rows_per_second: args.rows_per_second,
        tables,
        keys: args.keys,
    };
    let endpoints = Endpoints {
        source: &args.source,
        target: &args.target,
        function_name: &args.function_name,
        chunk_size: args.chunk_size,
    };
    let verb = Backfill {
        capture,
        options,
        progress: args.progress,
    };
    crate::with_engine(roots_only(&mapping), transforms, &endpoints, verb).await
}

struct Backfill {
    capture: CaptureOptions,
    options: BackfillOptions,
    progress: ProgressArg,
}

/// A bar per lane, by lane.
type Bars = (
    indicatif::MultiProgress,
    Mutex<Vec<(String, indicatif::ProgressBar)>>,
);

/// Shows progress: a bar per lane on a terminal, or periodic lines.
struct Shown {
    bars: Option<Bars>,
    lines: Option<Mutex<Instant>>,
    started: Instant,
}

impl Shown {
    fn new(mode: ProgressArg) -> Shown {
        let terminal = std::io::stderr().is_terminal();
        let bars = (mode == ProgressArg::Auto && terminal)
            .then(|| (indicatif::MultiProgress::new(), Mutex::new(Vec::new())));
        let lines = (mode == ProgressArg::Lines || (mode == ProgressArg::Auto && !terminal))
            .then(|| Mutex::new(Instant::now()));
        Shown {
            bars,
            lines,
            started: Instant::now(),
        }
    }

    fn show(&self, p: &Progress) {
        if let Some((multi, bars)) = &self.bars {
            let Ok(mut bars) = bars.lock() else { return };
            let bar = match bars.iter().find(|(lane, _)| *lane == p.lane) {
                Some((_, bar)) => bar.clone(),
                None => {
                    let bar = multi.add(indicatif::ProgressBar::new(1000));
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{prefix} [{bar:30}] {percent:>3}% {msg} ETA {eta}",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(p.lane.clone());
                    bars.push((p.lane.clone(), bar.clone()));
                    bar
                }
            };
            bar.set_position((p.done * 1000.0) as u64);
            let rate = p.rows as f64 / self.started.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!("{} rows, {rate:.0} rows/s", p.rows));
        }
        if let Some(last) = &self.lines {
            let Ok(mut last) = last.lock() else { return };
            if last.elapsed() >= Duration::from_secs(10) || p.done >= 1.0 {
                *last = Instant::now();
                let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
                let eta = if p.done > 0.0 {
                    format!("{:.0} s", elapsed * (1.0 - p.done) / p.done)
                } else {
                    "?".to_owned()
                };
                eprintln!(
                    "{}: {} rows, {:.1}% of its key range, {:.0} rows/s, ETA {eta}",
                    p.lane,
                    p.rows,
                    p.done * 100.0,
                    p.rows as f64 / elapsed
                );
            }
        }
    }

    fn finish(&self) {
        if let Some((_, bars)) = &self.bars {
            if let Ok(bars) = bars.lock() {
                for (_, bar) in bars.iter() {
                    bar.finish();
                }
            }
        }
    }
}

fn summary(reports: &[RangeReport], elapsed: Duration) -> String {
    let mut out = String::new();
    for r in reports {
        out.push_str(&format!(
            "{}: {}{}: {} rows in {} transactions, {} quarantined\n",
            r.lane,
            r.range,
            r.resumed_after
                .as_ref()
                .map(|k| format!(" (resumed after key {k})"))
                .unwrap_or_default(),
            r.rows,
            r.batches,
            r.quarantined
        ));
    }
    let rows: u64 = reports.iter().map(|r| r.rows).sum();
    let quarantined: u64 = reports.iter().map(|r| r.quarantined).sum();
    out.push_str(&format!(
        "backfill done: {rows} rows in {:.1} s ({:.0} rows/s), {quarantined} quarantined\n",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64().max(0.001)
    ));
    out
}

impl crate::EngineVerb for Backfill {
    async fn run<T: Target>(self, engine: Engine<AnySource, T>) -> anyhow::Result<ExitCode> {
        let shown = Shown::new(self.progress);
        let started = Instant::now();
        let result = backfill(&engine, &self.capture, &self.options, &|p| shown.show(p)).await;
        shown.finish();
        match result {
            Ok(reports) => {
                out!("{}", summary(&reports, started.elapsed()));
                Ok(ExitCode::SUCCESS)
            }
            Err(dms_cdc_devkit::backfill::BackfillError::Usage(e)) => {
                eprintln!("error: {e}");
                Ok(ExitCode::from(2))
            }
            Err(
                e @ dms_cdc_devkit::backfill::BackfillError::Source(
                    dms_cdc_devkit::capture::CaptureError::Setup(_),
                ),
            ) => {
                eprintln!("error: {e}");
                Ok(ExitCode::from(2))
            }
            Err(e) => {
                eprintln!("error: {e} (run the same command again: it resumes)");
                Ok(ExitCode::from(1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_part;

    #[test]
    fn parts_are_i_of_n() {
        assert_eq!(parse_part("1/1"), Ok((1, 1)));
        assert_eq!(parse_part("3/4"), Ok((3, 4)));
        for bad in ["0/4", "5/4", "1/0", "x/2", "2"] {
            assert!(parse_part(bad).is_err(), "{bad}");
        }
        assert_eq!(super::parse_keys("-5..10"), Ok((-5, 10)));
        for bad in ["10..5", "1-5", "a..b"] {
            assert!(super::parse_keys(bad).is_err(), "{bad}");
        }
    }
}
