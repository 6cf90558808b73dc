//! Where on-failure records come from (an SQS queue, or a file of JSON
//! lines) and the [`Redrive`] run over them: each record's range is
//! redriven, and the record is removed only once its range is applied.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_kinesis::Client;

use super::apply::{redrive_range, Apply, RangeReport, RangeStatus};
use super::on_failure::{parse_on_failure, stream_name_of_arn, OnFailure};
use super::progress::{Progress, RunSummary};
use super::range::{Range, Start};
use super::reader::ReadLimits;

/// Where on-failure records are read from (`--from-queue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnFailureQueue {
    /// An SQS queue, by URL.
    Sqs(String),
    /// A file of JSON lines (what `consume --on-failure-file` writes).
    File(PathBuf),
}

impl OnFailureQueue {
    /// An `http://` or `https://` URL is an SQS queue; anything else is a
    /// file path, with or without `file://`.
    pub fn parse(text: &str) -> Self {
        if text.starts_with("https://") || text.starts_with("http://") {
            OnFailureQueue::Sqs(text.to_owned())
        } else {
            OnFailureQueue::File(PathBuf::from(text.trim_start_matches("file://")))
        }
    }
}

/// A redrive run: the Kinesis client, where records go, read limits.
pub struct Redrive<'a> {
    /// Kinesis.
    pub kinesis: &'a Client,
    /// Engine or dry run.
    pub apply: Apply<'a>,
    /// Read limits.
    pub limits: ReadLimits,
    /// Stream name (overrides the on-failure record's ARN).
    pub stream: Option<String>,
    /// Print one report per range on standard output.
    pub verbose: bool,
}

impl Redrive<'_> {
    fn range_of(&self, f: &OnFailure) -> Result<Range, String> {
        let stream = match (&self.stream, &f.stream_arn) {
            (Some(s), _) => s.clone(),
            (None, Some(arn)) => stream_name_of_arn(arn)
                .ok_or_else(|| format!("streamArn {arn:?} names no stream"))?
                .to_owned(),
            (None, None) => return Err("no streamArn; pass --stream".to_owned()),
        };
        Ok(Range {
            stream,
            shard: f.shard.clone(),
            start: Start::At(f.start.clone()),
            end: Some(f.end.clone()),
        })
    }

    fn dry(&self) -> bool {
        matches!(self.apply, Apply::DryRun { .. })
    }

    async fn one(&self, range: Range, progress: &mut Progress) -> RangeReport {
        let report = redrive_range(self.kinesis, range, &self.limits, self.apply, progress).await;
        progress.range_done(&report);
        if self.verbose {
            if progress.enabled {
                let _ = write!(std::io::stderr(), "\r");
            }
            // A closed standard output (`| head`) is not the redrive's failure.
            let _ = writeln!(std::io::stdout(), "{}", report.render());
        }
        report
    }

    /// Ranges given directly (`--shard/--from/--to`, `--since`).
    pub async fn ranges(&self, ranges: Vec<Range>, progress: &mut Progress) -> RunSummary {
        progress.total_ranges = Some(ranges.len());
        let mut summary = RunSummary::default();
        for range in ranges {
            summary.ranges.push(self.one(range, progress).await);
        }
        progress.finish();
        summary
    }

    /// On-failure records from a file of JSON lines (what `consume
    /// --on-failure-file` writes). A record whose range is applied is
    /// removed from the file right away (the file is rewritten atomically);
    /// the others stay.
    pub async fn file(&self, path: &Path, progress: &mut Progress) -> anyhow::Result<RunSummary> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut lines: Vec<Option<String>> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| Some(l.to_owned()))
            .collect();
        progress.total_ranges = Some(lines.len());
        let mut summary = RunSummary::default();
        for i in 0..lines.len() {
            let Some(line) = lines[i].clone() else {
                continue;
            };
            let range = match parse_on_failure(&line).and_then(|f| self.range_of(&f)) {
                Ok(r) => r,
                Err(e) => {
                    summary
                        .invalid
                        .push(format!("{} line {}: {e}", path.display(), i + 1));
                    summary.kept += 1;
                    continue;
                }
            };
            let report = self.one(range, progress).await;
            if report.status() == RangeStatus::Applied && !self.dry() {
                lines[i] = None;
                summary.removed += 1;
                rewrite(path, &lines)?;
            } else {
                summary.kept += 1;
            }
            summary.ranges.push(report);
        }
        progress.finish();
        Ok(summary)
    }

    /// On-failure records from an SQS queue: each message is hidden while
    /// its range is redriven, deleted only after the range is applied, and
    /// otherwise made visible again at the end of the run.
    pub async fn sqs(
        &self,
        sqs: &aws_sdk_sqs::Client,
        queue_url: &str,
        visibility_timeout: Duration,
        max_messages: Option<usize>,
        progress: &mut Progress,
    ) -> anyhow::Result<RunSummary> {
        let mut summary = RunSummary::default();
        let mut seen = HashSet::new();
        let mut release = Vec::new();
        let result: anyhow::Result<()> = async {
            loop {
                if max_messages.is_some_and(|m| seen.len() >= m) {
                    break;
                }
                let want = max_messages.map_or(10, |m| (m - seen.len()).clamp(1, 10));
                let out = sqs
                    .receive_message()
                    .queue_url(queue_url)
                    .max_number_of_messages(want as i32)
                    .visibility_timeout(visibility_timeout.as_secs().clamp(1, 43_200) as i32)
                    .wait_time_seconds(1)
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "sqs ReceiveMessage {queue_url}: {}",
                            aws_sdk_sqs::error::DisplayErrorContext(e)
                        )
                    })?;
                let messages = out.messages();
                if messages.is_empty() {
                    break;
                }
                let mut new = 0;
                for m in messages {
                    let id = m.message_id().unwrap_or_default().to_owned();
                    let handle = m.receipt_handle().unwrap_or_default().to_owned();
                    if !seen.insert(id.clone()) {
                        continue;
                    }
                    new += 1;
                    let range = match parse_on_failure(m.body().unwrap_or_default())
                        .and_then(|f| self.range_of(&f))
                    {
                        Ok(r) => r,
                        Err(e) => {
                            summary.invalid.push(format!("message {id}: {e}"));
                            summary.kept += 1;
                            release.push(handle);
                            continue;
                        }
                    };
                    let report = self.one(range, progress).await;
                    if report.status() == RangeStatus::Applied && !self.dry() {
                        sqs.delete_message()
                            .queue_url(queue_url)
                            .receipt_handle(&handle)
                            .send()
                            .await
                            .map_err(|e| {
                                anyhow::anyhow!(
                                    "sqs DeleteMessage {queue_url} (range applied; the message will be redriven again, which is harmless): {}",
                                    aws_sdk_sqs::error::DisplayErrorContext(e)
                                )
                            })?;
                        summary.removed += 1;
                    } else {
                        summary.kept += 1;
                        release.push(handle);
                    }
                    summary.ranges.push(report);
                }
                if new == 0 {
                    break;
                }
            }
            Ok(())
        }
        .await;
        // Kept messages become visible again now, for the next run.
        for handle in release {
            if let Err(e) = sqs
                .change_message_visibility()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await
            {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not make a kept message visible again; it will be after the visibility timeout");
            }
        }
        progress.finish();
        result.map(|()| summary)
    }
}

fn rewrite(path: &Path, lines: &[Option<String>]) -> anyhow::Result<()> {
    let tmp = path.with_extension("redrive-tmp");
    let mut text = String::new();
    for l in lines.iter().flatten() {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// An SQS client for AWS (endpoint `None`) or a local emulator.
pub async fn sqs_client(endpoint: Option<&str>) -> aws_sdk_sqs::Client {
    match endpoint {
        None => aws_sdk_sqs::Client::new(&aws_config::load_from_env().await),
        Some(url) => {
            let config = aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    "local",
                    "local",
                    None,
                    None,
                    "dms-cdc-local",
                ))
                .endpoint_url(url)
                .build();
            aws_sdk_sqs::Client::from_conf(config)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OnFailureQueue;

    #[test]
    fn queue_urls_are_sqs_and_the_rest_are_files() {
        for (text, queue) in [
            (
                "https://sqs.us-east-1.amazonaws.com/1/q",
                OnFailureQueue::Sqs("https://sqs.us-east-1.amazonaws.com/1/q".into()),
            ),
            (
                "http://127.0.0.1:5000/1/q",
                OnFailureQueue::Sqs("http://127.0.0.1:5000/1/q".into()),
            ),
            (
                "file:///tmp/failures.jsonl",
                OnFailureQueue::File("/tmp/failures.jsonl".into()),
            ),
            (
                "failures.jsonl",
                OnFailureQueue::File("failures.jsonl".into()),
            ),
        ] {
            assert_eq!(OnFailureQueue::parse(text), queue, "{text}");
        }
    }
}
