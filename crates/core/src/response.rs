//! The response to Lambda: what became of each record, and the one record
//! to resume from.
//!
//! Lambda's Kinesis event source mapping, with `ReportBatchItemFailures`,
//! checkpoints at the lowest sequence number the function reports and
//! redelivers every record from there. So the response names exactly one
//! record: the earliest whose effect is not durably applied. Records that
//! were quarantined count as done (their payload and reason are stored), so
//! the shard moves on. Complete success is an empty list; an item identifier
//! is never empty.

use aws_lambda_events::streams::KinesisEventResponse;

use crate::position::SequenceNumber;

/// What became of one record of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Its effect is durably written (together with the checkpoint).
    Applied,
    /// It needed no write (control record, unmapped table, unchanged
    /// columns, or already at or below the checkpoint).
    Skipped,
    /// It was stored in the quarantine table with its payload and reason.
    Quarantined,
    /// Its effect is not durable (a retryable failure, or it was not reached):
    /// Lambda must deliver it again.
    Pending,
}

impl Outcome {
    /// Whether the shard may move past this record.
    pub fn is_done(self) -> bool {
        !matches!(self, Outcome::Pending)
    }
}

/// The record Lambda must resume from: the first not done, if any.
pub fn checkpoint<'a>(
    outcomes: impl IntoIterator<Item = (&'a SequenceNumber, Outcome)>,
) -> Option<&'a SequenceNumber> {
    outcomes
        .into_iter()
        .find(|(_, o)| !o.is_done())
        .map(|(s, _)| s)
}

/// Builds the `ReportBatchItemFailures` response for the outcomes of a batch
/// (in delivery order).
pub fn build_response<'a>(
    outcomes: impl IntoIterator<Item = (&'a SequenceNumber, Outcome)>,
) -> KinesisEventResponse {
    let mut response = KinesisEventResponse::default();
    if let Some(seq) = checkpoint(outcomes) {
        response.add_failure(seq.as_str());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seqs(n: usize) -> Vec<SequenceNumber> {
        // Realistic 56-digit sequence numbers, increasing.
        (0..n)
            .map(|i| {
                SequenceNumber::parse(&format!(
                    "4959033827149025660855969253836157109592157598913658{:04}",
                    i * 7
                ))
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn success_is_an_empty_list() {
        let s = seqs(3);
        let r = build_response(s.iter().map(|q| (q, Outcome::Applied)));
        assert!(r.batch_item_failures.is_empty());
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"batchItemFailures":[]}"#);
    }

    #[test]
    fn quarantined_and_skipped_records_do_not_hold_the_shard() {
        let s = seqs(4);
        let outcomes = [
            Outcome::Applied,
            Outcome::Quarantined,
            Outcome::Skipped,
            Outcome::Applied,
        ];
        let r = build_response(s.iter().zip(outcomes));
        assert!(r.batch_item_failures.is_empty());
    }

    #[test]
    fn reports_the_first_pending_record_only() {
        let s = seqs(5);
        let outcomes = [
            Outcome::Applied,
            Outcome::Quarantined,
            Outcome::Pending,
            Outcome::Applied,
            Outcome::Pending,
        ];
        let r = build_response(s.iter().zip(outcomes));
        assert_eq!(r.batch_item_failures.len(), 1);
        assert_eq!(
            r.batch_item_failures[0].item_identifier.as_deref(),
            Some(s[2].as_str())
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["batchItemFailures"][0]["itemIdentifier"],
            s[2].as_str()
        );
    }

    proptest! {
        #[test]
        fn checkpoint_is_exactly_the_first_not_applied_record(
            outcomes in proptest::collection::vec(
                prop_oneof![Just(Outcome::Applied), Just(Outcome::Skipped), Just(Outcome::Quarantined), Just(Outcome::Pending)],
                0..60,
            )
        ) {
            let s = seqs(outcomes.len());
            let r = build_response(s.iter().zip(outcomes.iter().copied()));
            let first_pending = outcomes.iter().position(|o| *o == Outcome::Pending);
            match first_pending {
                None => prop_assert!(r.batch_item_failures.is_empty()),
                Some(i) => {
                    prop_assert_eq!(r.batch_item_failures.len(), 1);
                    let id = r.batch_item_failures[0].item_identifier.clone().unwrap();
                    prop_assert!(!id.is_empty());
                    prop_assert_eq!(&id, s[i].as_str());
                    // Lambda redelivers from the reported record: everything before
                    // it is done, and it is not.
                    let reported = SequenceNumber::parse(&id).unwrap();
                    for (q, o) in s.iter().zip(&outcomes) {
                        if *q < reported { prop_assert!(o.is_done()); }
                    }
                }
            }
        }
    }
}
