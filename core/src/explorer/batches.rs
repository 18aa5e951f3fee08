//! Batch reports as chart points: gathered into at most a few thousand bins.

use serde_json::Value;

use crate::drift::DriftMonitor;
use crate::eval::{wilson_interval, Interval};
use crate::throughput::ThroughputWindow;

use super::run_file::count;
use super::run_file::number;
use super::BatchPoint;
use super::MAX_BATCH_POINTS;

/// Nearest-rank percentile of sorted values.
pub(super) fn percentile(sorted: &[u64], p: u64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p as usize * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1] as f64)
}

/// The batch points, folded as the reports are read: one point per report up to
/// twice [`MAX_BATCH_POINTS`], then neighbouring points merged pairwise (and later
/// reports gathered as many to a point), so a run of any length keeps a few
/// thousand.
#[derive(Debug, Default)]
pub(super) struct Batches {
    pub(super) bins: Vec<Bin>,
    /// Batches a point gathers now.
    pub(super) width: u64,
    pub(super) prev_agreements: u64,
    pub(super) throughput: ThroughputWindow,
    /// The drift tests, for reports that do not say (written before they existed).
    pub(super) drift: DriftMonitor,
}

/// A point and what merging it with its neighbour needs.
#[derive(Debug, Default)]
pub(super) struct Bin {
    pub(super) point: BatchPoint,
    /// This batch's agreements (not the report's cumulative count).
    pub(super) agreements: Option<u64>,
    /// The report's word on drift, when it has one.
    pub(super) drift: Option<bool>,
    /// The report had no latency percentiles: they come from the rows.
    pub(super) latency_from_rows: bool,
    pub(super) rows_latency: Vec<u64>,
    pub(super) p50_sum: f64,
    pub(super) p50_n: u64,
    pub(super) throughput_sum: f64,
    pub(super) throughput_n: u64,
    pub(super) rate_sum: f64,
    pub(super) rate_n: u64,
}

pub(super) fn add_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    Some(a? + b?)
}

impl Bin {
    fn merge(&mut self, next: Bin) {
        let (p, q) = (&mut self.point, next.point);
        p.batches += q.batches;
        p.end = q.end;
        p.successful = add_opt(p.successful, q.successful);
        p.failed = add_opt(p.failed, q.failed);
        p.retries = add_opt(p.retries, q.retries);
        p.rate_limit_hits = add_opt(p.rate_limit_hits, q.rate_limit_hits);
        p.resumed &= q.resumed;
        self.agreements = add_opt(self.agreements, next.agreements);
        self.drift = match (self.drift, next.drift) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        };
        self.latency_from_rows |= next.latency_from_rows;
        self.p50_sum += next.p50_sum;
        self.p50_n += next.p50_n;
        p.latency_p95_ms = match (p.latency_p95_ms, q.latency_p95_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        p.latency_p50_ms = (self.p50_n > 0).then(|| self.p50_sum / self.p50_n as f64);
        self.throughput_sum += next.throughput_sum;
        self.throughput_n += next.throughput_n;
        p.throughput_per_sec =
            (self.throughput_n > 0).then(|| self.throughput_sum / self.throughput_n as f64);
        self.rate_sum += next.rate_sum;
        self.rate_n += next.rate_n;
        // Agreement from the summed counts, else the mean of the batches' rates.
        match (self.agreements, p.successful) {
            (Some(a), Some(n)) => {
                p.agreement_rate = (n > 0).then(|| a as f64 / n as f64);
                p.agreement_interval = wilson_interval(a, n);
            }
            _ => {
                p.agreement_rate = (self.rate_n > 0).then(|| self.rate_sum / self.rate_n as f64);
                p.agreement_interval = None;
            }
        }
    }
}

impl Batches {
    /// One batch report, in order.
    pub(super) fn add(&mut self, report: &Value) {
        let start = count(report, "batchStartIndex").unwrap_or(0);
        let end = count(report, "batchEndIndex").unwrap_or(start);
        let resumed = report.get("resumed").and_then(Value::as_bool) == Some(true);
        let successful = count(report, "batchSuccessful");
        let cumulative = count(report, "agreements");
        let agreements = cumulative.map(|a| a.saturating_sub(self.prev_agreements));
        if let Some(a) = cumulative {
            self.prev_agreements = a;
        }
        let derived_rate = match (agreements, successful) {
            (Some(a), Some(n)) if n > 0 => Some(a as f64 / n as f64),
            _ => None,
        };
        let agreement_rate = number(report, "agreementRate").or(derived_rate);
        let agreement_interval = report
            .get("agreementInterval")
            .and_then(|i| serde_json::from_value::<Interval>(i.clone()).ok())
            .or_else(|| match (agreements, successful) {
                (Some(a), Some(n)) => wilson_interval(a, n),
                _ => None,
            });
        let (p50, p95) = (
            number(report, "latencyP50Ms"),
            number(report, "latencyP95Ms"),
        );
        // Throughput over a second or more of the reports' elapsed times (see
        // `ThroughputWindow`), whatever the report says: reports written before
        // issue 21 measured it over the gap since the previous report, often 1 ms.
        let size = count(report, "batchSize").unwrap_or(end + 1 - start);
        let throughput = match count(report, "elapsedMs") {
            Some(elapsed) => {
                let rate = self.throughput.add(elapsed, if resumed { 0 } else { size });
                rate.filter(|_| !resumed)
            }
            None => number(report, "throughputPerSec"),
        };
        let bin = Bin {
            point: BatchPoint {
                batch_number: count(report, "batchNumber").unwrap_or(
                    self.bins
                        .last()
                        .map_or(1, |b| b.point.batch_number + b.point.batches),
                ),
                batches: 1,
                start,
                end,
                successful,
                failed: count(report, "batchFailed"),
                agreement_rate,
                agreement_interval,
                drift: false,
                latency_p50_ms: p50,
                latency_p95_ms: p95,
                throughput_per_sec: throughput,
                retries: count(report, "retries"),
                rate_limit_hits: count(report, "rateLimitHits"),
                resumed,
            },
            agreements,
            drift: report.get("drift").and_then(Value::as_bool).or_else(|| {
                let check = self.drift.check(agreements?, successful?)?;
                Some(check.signal.is_some())
            }),
            latency_from_rows: p50.is_none() || p95.is_none(),
            rows_latency: Vec::new(),
            p50_sum: p50.unwrap_or(0.0),
            p50_n: u64::from(p50.is_some()),
            throughput_sum: throughput.unwrap_or(0.0),
            throughput_n: u64::from(throughput.is_some()),
            rate_sum: agreement_rate.unwrap_or(0.0),
            rate_n: u64::from(agreement_rate.is_some()),
        };
        self.width = self.width.max(1);
        match self.bins.last_mut() {
            Some(last) if last.point.batches < self.width => last.merge(bin),
            _ => self.bins.push(bin),
        }
        if self.bins.len() >= 2 * MAX_BATCH_POINTS {
            let bins = std::mem::take(&mut self.bins);
            let mut it = bins.into_iter();
            while let Some(mut a) = it.next() {
                if let Some(b) = it.next() {
                    a.merge(b);
                }
                self.bins.push(a);
            }
            self.width *= 2;
        }
    }

    /// A row's latency, kept for the percentiles of a point whose reports had none.
    pub(super) fn row_latency(&mut self, row: u64, latency: Option<u64>) {
        let Some(latency) = latency else { return };
        let at = self.bins.partition_point(|b| b.point.start <= row);
        if let Some(bin) = at.checked_sub(1).map(|i| &mut self.bins[i]) {
            if bin.latency_from_rows && row <= bin.point.end {
                bin.rows_latency.push(latency);
            }
        }
    }

    pub(super) fn points(self) -> Vec<BatchPoint> {
        self.bins
            .into_iter()
            .map(|mut bin| {
                let p = &mut bin.point;
                if bin.latency_from_rows {
                    bin.rows_latency.sort_unstable();
                    p.latency_p50_ms = p.latency_p50_ms.or(percentile(&bin.rows_latency, 50));
                    p.latency_p95_ms = p.latency_p95_ms.or(percentile(&bin.rows_latency, 95));
                }
                p.drift = bin.drift == Some(true);
                bin.point
            })
            .collect()
    }
}
