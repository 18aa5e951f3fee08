//! What the run counts and reports: per-item and per-batch tallies, the error
//! list, latencies, token usage, the evaluation, and the batch reports built from
//! them in batch order.

use std::collections::BTreeMap;

use crate::compare::LiveComparison;
use crate::drift::DriftMonitor;
use crate::eval::calibration::ConfidenceTally;
use crate::eval::slices::SliceTallies;
use crate::eval::{wilson_interval, Tally};
use crate::input::Item;
use crate::journal::Usage;
use crate::report::{display_image, percent, BatchReport, ErrorEntry, LatencySummary, Statistics};
use crate::throughput::ThroughputWindow;
use crate::time::Millis;

use super::contract::ItemDone;
use super::outcome::Ended;
use crate::confidence::Scored;

#[derive(Clone, Copy, Debug, Default)]
struct BatchTally {
    remaining: u32,
    successful: u32,
    failed: u32,
    agreements: u32,
    retries: u32,
    rate_limit_hits: u32,
    restored: u32,
}

/// An item that became final.
pub(super) struct FinalItem<'a> {
    pub(super) row: usize,
    pub(super) item: &'a Item,
    /// Index of the item's label in the label set (`None` for a defective row).
    pub(super) label: Option<usize>,
    /// Requests made for it.
    pub(super) attempts: u32,
    pub(super) ended: Ended,
    pub(super) at: Millis,
}

/// Where a final result comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// Decided in this session: journaled and counted in the session's timing.
    Live,
    /// Read back from the journal of an earlier session.
    Restored,
}

#[derive(Debug)]
pub(super) struct Tallies {
    batch_size: usize,
    items: usize,
    batches: Vec<BatchTally>,
    /// Latencies of each batch not yet reported (freed when it is).
    batch_latencies: Vec<Vec<u32>>,
    /// The drift tests over the batches reported so far.
    drift: DriftMonitor,
    /// Throughput over the recent reports.
    throughput: ThroughputWindow,
    pub(super) reports: Vec<BatchReport>,
    pub(super) successful: usize,
    pub(super) failed: usize,
    pub(super) agreements: usize,
    pub(super) done_this_session: usize,
    pub(super) resumed: usize,
    pub(super) requests: u64,
    pub(super) retries: u64,
    pub(super) rate_limit_hits: u64,
    usage: Usage,
    /// Items whose answer reported token usage.
    pub(super) items_with_usage: usize,
    /// How many answers took each whole number of ms: exact percentiles in memory
    /// that follows the distinct latencies, not the rows (at most one entry per
    /// ms up to the request timeout).
    latencies: BTreeMap<u32, u64>,
    pub(super) errors: Vec<ErrorEntry>,
    /// The answers' confidences, for calibration and coverage.
    pub(super) confidence: ConfidenceTally,
    pub(super) eval: Tally,
    pub(super) slices: SliceTallies,
    /// The comparison with a baseline (`--baseline`, `--baseline-column`).
    pub(super) comparison: Option<LiveComparison>,
}

/// The nearest-rank `p`th percentile of sorted `values`.
fn percentile(sorted: &[u32], p: usize) -> Option<u64> {
    sorted
        .get((sorted.len() * p).div_ceil(100).saturating_sub(1))
        .map(|v| u64::from(*v))
}

/// [`percentile`] of the values `counts` holds (`count` of them in all).
fn counted_percentile(counts: &BTreeMap<u32, u64>, count: u64, p: u64) -> Option<u64> {
    if count == 0 {
        return None;
    }
    let rank = (count * p).div_ceil(100).saturating_sub(1);
    let mut below = 0;
    for (value, n) in counts {
        below += n;
        if below > rank {
            return Some(u64::from(*value));
        }
    }
    None
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn clamp_ms(ms: u64) -> u32 {
    ms.min(u64::from(u32::MAX)) as u32
}

impl Tallies {
    pub(super) fn new(
        items: usize,
        batch_size: usize,
        labels: usize,
        extra_columns: &[String],
    ) -> Tallies {
        let batch_count = items.div_ceil(batch_size);
        Tallies {
            batch_size,
            items,
            batches: (0..batch_count)
                .map(|b| BatchTally {
                    remaining: (items - b * batch_size).min(batch_size) as u32,
                    ..BatchTally::default()
                })
                .collect(),
            batch_latencies: vec![Vec::new(); batch_count],
            drift: DriftMonitor::default(),
            throughput: ThroughputWindow::default(),
            reports: Vec::with_capacity(batch_count),
            successful: 0,
            failed: 0,
            agreements: 0,
            done_this_session: 0,
            resumed: 0,
            requests: 0,
            retries: 0,
            rate_limit_hits: 0,
            usage: Usage::default(),
            items_with_usage: 0,
            latencies: BTreeMap::new(),
            errors: Vec::new(),
            confidence: ConfidenceTally::default(),
            eval: Tally::new(labels),
            slices: SliceTallies::new(extra_columns, labels),
            comparison: None,
        }
    }

    pub(super) fn batch_count(&self) -> usize {
        self.batches.len()
    }

    pub(super) fn final_count(&self) -> usize {
        self.successful + self.failed
    }

    pub(super) fn on_retry(&mut self, item: usize) {
        self.retries += 1;
        self.batches[item / self.batch_size].retries += 1;
    }

    pub(super) fn on_rate_limited(&mut self, item: usize) {
        self.rate_limit_hits += 1;
        self.batches[item / self.batch_size].rate_limit_hits += 1;
    }

    /// Counts an item as final and says what to journal.
    pub(super) fn record(&mut self, f: FinalItem<'_>, source: Source) -> ItemDone {
        let FinalItem {
            row,
            item,
            label,
            attempts,
            ended,
            at: now,
        } = f;
        if let Some(comparison) = &mut self.comparison {
            let prediction = match &ended {
                Ended::Succeeded { label, .. } => Some(*label),
                Ended::Failed(_) => None,
            };
            let image = display_image(item.image.as_str());
            comparison.record(row, item, &image, label, prediction);
        }
        let batch = &mut self.batches[row / self.batch_size];
        batch.remaining -= 1;
        match source {
            Source::Live => self.done_this_session += 1,
            Source::Restored => {
                self.resumed += 1;
                batch.restored += 1;
            }
        }
        match ended {
            Ended::Succeeded {
                label: predicted,
                answer,
                usage,
                latency_ms,
                status,
                confidence,
            } => {
                self.successful += 1;
                batch.successful += 1;
                if label == Some(predicted) {
                    self.agreements += 1;
                    batch.agreements += 1;
                }
                if let Some(label) = label {
                    self.eval.record(label, predicted);
                    let given = match &confidence {
                        Scored::Given(c) => Some(c),
                        Scored::Gap(gap) => {
                            self.confidence.gap(*gap);
                            None
                        }
                        Scored::Unscored => None,
                    };
                    self.confidence
                        .record(row, item.line, label, predicted, given);
                }
                self.slices
                    .record(&item.extra, label.map(|l| (l, predicted)));
                if let Some(u) = usage {
                    self.items_with_usage += 1;
                    // The counts come from the endpoint or a journal: any u64.
                    let sum = &mut self.usage;
                    sum.prompt_tokens = sum.prompt_tokens.saturating_add(u.prompt_tokens);
                    sum.completion_tokens =
                        sum.completion_tokens.saturating_add(u.completion_tokens);
                    sum.total_tokens = sum.total_tokens.saturating_add(u.total_tokens);
                }
                *self.latencies.entry(clamp_ms(latency_ms)).or_default() += 1;
                self.batch_latencies[row / self.batch_size].push(clamp_ms(latency_ms));
                ItemDone {
                    row,
                    prediction: Some(predicted),
                    answer: Some(answer),
                    attempts,
                    latency_ms: Some(latency_ms),
                    http_status: Some(status),
                    usage,
                    failure: None,
                    finished_at: now,
                    confidence: match &confidence {
                        Scored::Given(c) => Some(c.probability),
                        _ => None,
                    },
                    confidence_gap: match &confidence {
                        Scored::Gap(gap) => Some(*gap),
                        _ => None,
                    },
                    alternatives: match confidence {
                        Scored::Given(c) => c.alternatives,
                        _ => Vec::new(),
                    },
                }
            }
            Ended::Failed(failure) => {
                self.failed += 1;
                self.slices.record(&item.extra, None);
                batch.failed += 1;
                if let Some(l) = failure.latency_ms.filter(|_| failure.status.is_some()) {
                    *self.latencies.entry(clamp_ms(l)).or_default() += 1;
                    self.batch_latencies[row / self.batch_size].push(clamp_ms(l));
                }
                self.errors.push(ErrorEntry {
                    row,
                    line: item.line,
                    image: display_image(item.image.as_str()).into_owned(),
                    label: item.label.to_string(),
                    error: failure.message.clone(),
                    error_kind: Some(failure.kind),
                    http_status: failure.status,
                    attempts,
                });
                ItemDone {
                    row,
                    prediction: None,
                    answer: None,
                    attempts,
                    latency_ms: failure.latency_ms,
                    http_status: failure.status,
                    usage: None,
                    failure: Some((failure.kind, failure.message)),
                    finished_at: now,
                    confidence: None,
                    alternatives: Vec::new(),
                    confidence_gap: None,
                }
            }
        }
    }

    /// Elapsed time over the items finished in this session.
    pub(super) fn average_ms(&self, elapsed: u64) -> u64 {
        match self.done_this_session {
            0 => 0,
            n => elapsed / n as u64,
        }
    }

    /// The report of the next batch in order, once every item of it is final.
    pub(super) fn next_report(&mut self, elapsed: u64) -> Option<BatchReport> {
        let b = self.reports.len();
        let tally = *self.batches.get(b)?;
        if tally.remaining > 0 {
            return None;
        }
        let start = b * self.batch_size;
        let end = (start + self.batch_size).min(self.items) - 1;
        let (prev_ok, prev_failed, prev_agreed) = self
            .reports
            .last()
            .map_or((0, 0, 0), |r| (r.successful, r.failed, r.agreements));
        let successful = prev_ok + tally.successful as usize;
        let failed = prev_failed + tally.failed as usize;
        let processed = successful + failed;
        let average = self.average_ms(elapsed);
        let not_final = self.items - self.final_count();
        let report = BatchReport {
            batch_number: b + 1,
            total_batches: self.batches.len(),
            batch_start_index: start,
            batch_end_index: end,
            batch_size: end + 1 - start,
            processed,
            successful,
            failed,
            elapsed_ms: elapsed,
            average_time_per_image: average,
            estimated_time_remaining: average * not_final as u64,
            success_rate: percent(successful, processed),
            total_items: self.items,
            batch_successful: tally.successful as usize,
            batch_failed: tally.failed as usize,
            agreements: prev_agreed + tally.agreements as usize,
            retries: u64::from(tally.retries),
            rate_limit_hits: u64::from(tally.rate_limit_hits),
            resumed: tally.restored as usize == end + 1 - start,
            batch_agreement_rate: None,
            batch_agreement_interval: None,
            drift: false,
            drift_check: None,
            latency_p50_ms: None,
            latency_p95_ms: None,
            throughput_per_sec: None,
        };
        let report = self.with_batch_statistics(report, tally);
        self.reports.push(report.clone());
        Some(report)
    }

    /// Adds what describes this batch alone: its agreement and whether it drifts
    /// from the run's, its latencies, its throughput.
    fn with_batch_statistics(&mut self, mut report: BatchReport, tally: BatchTally) -> BatchReport {
        let b = report.batch_number - 1;
        let compared = u64::from(tally.successful);
        report.batch_agreement_rate =
            (compared > 0).then(|| round4(f64::from(tally.agreements) / compared as f64));
        report.batch_agreement_interval = wilson_interval(u64::from(tally.agreements), compared);
        report.drift_check = self.drift.check(u64::from(tally.agreements), compared);
        report.drift = report.drift_check.is_some_and(|c| c.signal.is_some());
        let mut latencies = std::mem::take(&mut self.batch_latencies[b]);
        latencies.sort_unstable();
        report.latency_p50_ms = percentile(&latencies, 50);
        report.latency_p95_ms = percentile(&latencies, 95);
        let live = report.batch_size - tally.restored as usize;
        let rate = self.throughput.add(report.elapsed_ms, live as u64);
        report.throughput_per_sec = rate.filter(|_| live > 0);
        report
    }

    pub(super) fn statistics(&self, elapsed: u64) -> Statistics {
        let processed = self.final_count();
        let count: u64 = self.latencies.values().sum();
        let pct = |p: u64| counted_percentile(&self.latencies, count, p).unwrap_or(0);
        Statistics {
            total: self.items,
            processed,
            successful: self.successful,
            failed: self.failed,
            remaining: self.items - processed,
            success_rate: percent(self.successful, processed),
            elapsed_ms: elapsed,
            average_time_per_image: self.average_ms(elapsed),
            requests: self.requests,
            retries: self.retries,
            rate_limit_hits: self.rate_limit_hits,
            resumed_items: self.resumed,
            latency_ms: LatencySummary {
                count: count as usize,
                p50: pct(50),
                p95: pct(95),
                max: self
                    .latencies
                    .last_key_value()
                    .map_or(0, |(v, _)| u64::from(*v)),
            },
            usage: self.usage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counted, the nearest-rank percentiles are those of the sorted values.
    #[test]
    fn percentiles_of_counts_are_those_of_the_sorted_values() {
        let mut values: Vec<u32> = (0..1_000u32).map(|i| (i * 7_919) % 613).collect();
        let mut counts = BTreeMap::new();
        for v in &values {
            *counts.entry(*v).or_insert(0u64) += 1;
        }
        values.sort_unstable();
        for p in [0, 1, 50, 95, 99, 100] {
            for n in [1, 2, 3, 10, 999, 1_000] {
                let mut some: BTreeMap<u32, u64> = BTreeMap::new();
                let mut sorted = values[..n].to_vec();
                for v in &values[..n] {
                    *some.entry(*v).or_default() += 1;
                }
                sorted.sort_unstable();
                assert_eq!(
                    counted_percentile(&some, n as u64, p as u64),
                    percentile(&sorted, p),
                    "p{p} of {n}"
                );
            }
        }
        assert_eq!(counted_percentile(&BTreeMap::new(), 0, 50), None);
        assert_eq!(
            counted_percentile(&counts, 1_000, 95),
            percentile(&values, 95)
        );
    }
}
