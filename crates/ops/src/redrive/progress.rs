//! What a run shows a person: the progress bar on standard error while it
//! runs, and the summary (and exit code) at the end.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use super::apply::{RangeReport, RangeStatus};
use super::range::LostRange;

/// A progress bar on standard error (only on a terminal).
pub struct Progress {
    pub(super) enabled: bool,
    pub(super) total_ranges: Option<usize>,
    ranges_done: usize,
    records_done: usize,
    current: usize,
    applied: usize,
    quarantined: usize,
    last_draw: Option<Instant>,
}

impl Progress {
    /// A progress bar; drawn only when `enabled` and standard error is a terminal.
    pub fn new(enabled: bool, total_ranges: Option<usize>) -> Self {
        Progress {
            enabled: enabled && std::io::stderr().is_terminal(),
            total_ranges,
            ranges_done: 0,
            records_done: 0,
            current: 0,
            applied: 0,
            quarantined: 0,
            last_draw: None,
        }
    }

    /// No output at all.
    pub fn hidden() -> Self {
        Progress::new(false, None)
    }

    pub(super) fn records(&mut self, r: &RangeReport) {
        self.current = r.records;
        self.draw(false, r.applied, r.quarantined);
    }

    pub(super) fn range_done(&mut self, r: &RangeReport) {
        self.ranges_done += 1;
        self.records_done += r.records;
        self.applied += r.applied;
        self.quarantined += r.quarantined;
        self.current = 0;
        self.draw(true, 0, 0);
    }

    fn draw(&mut self, force: bool, applied: usize, quarantined: usize) {
        if !self.enabled {
            return;
        }
        if !force
            && self
                .last_draw
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last_draw = Some(Instant::now());
        const WIDTH: usize = 30;
        let bar = match self.total_ranges {
            Some(total) if total > 0 => {
                let filled = (self.ranges_done * WIDTH / total).min(WIDTH);
                format!(
                    "[{}{}] {}/{} ranges",
                    "#".repeat(filled),
                    "-".repeat(WIDTH - filled),
                    self.ranges_done,
                    total
                )
            }
            _ => format!("{} ranges", self.ranges_done),
        };
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r{bar} | {} records read | {} applied | {} quarantined   ",
            self.records_done + self.current,
            self.applied + applied,
            self.quarantined + quarantined
        );
        let _ = err.flush();
    }

    pub(super) fn finish(&mut self) {
        if self.enabled {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// Counts of a redrive run.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// One report per range, in order.
    pub ranges: Vec<RangeReport>,
    /// On-failure records removed (SQS messages deleted, file lines dropped).
    pub removed: usize,
    /// On-failure records kept (not applied, lost, unreadable, or a dry run).
    pub kept: usize,
    /// On-failure records that could not be parsed (kept).
    pub invalid: Vec<String>,
}

impl RunSummary {
    /// The process exit code: 3 if anything is lost, else 1 if anything
    /// failed or could not be parsed, else 0.
    pub fn exit_code(&self) -> u8 {
        let statuses: Vec<RangeStatus> = self.ranges.iter().map(RangeReport::status).collect();
        if statuses.contains(&RangeStatus::Lost) {
            3
        } else if statuses.contains(&RangeStatus::Failed) || !self.invalid.is_empty() {
            1
        } else {
            0
        }
    }

    /// The final summary for a person.
    pub fn render(&self) -> String {
        let count = |s| self.ranges.iter().filter(|r| r.status() == s).count();
        let sum = |f: fn(&RangeReport) -> usize| self.ranges.iter().map(f).sum::<usize>();
        let mut out = format!(
            "ranges: {} (applied {}, incomplete {}, failed {}); records read {}, applied {}, skipped {}, quarantined {}\n",
            self.ranges.len(),
            count(RangeStatus::Applied),
            count(RangeStatus::Lost),
            count(RangeStatus::Failed),
            sum(|r| r.records),
            sum(|r| r.applied),
            sum(|r| r.skipped),
            sum(|r| r.quarantined),
        );
        let mut tables: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for r in &self.ranges {
            for (t, n) in &r.upserts {
                tables.entry(t).or_default().0 += n;
            }
            for (t, n) in &r.deletes {
                tables.entry(t).or_default().1 += n;
            }
        }
        for (t, (u, d)) in tables {
            out.push_str(&format!("writes {t}: {u} upserted, {d} deleted\n"));
        }
        let lost: Vec<&LostRange> = self.ranges.iter().flat_map(|r| &r.lost).collect();
        for l in &lost {
            out.push_str(&format!("{l}\n"));
        }
        for i in &self.invalid {
            out.push_str(&format!("not an on-failure record (kept): {i}\n"));
        }
        out.push_str(&format!(
            "on-failure records: {} removed, {} kept\n",
            self.removed, self.kept
        ));
        out
    }
}
